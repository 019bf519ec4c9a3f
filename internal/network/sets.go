package network

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// setElement adds addr to, or deletes it from, the IPv4 address set called set of the
// inet table called table, over netlink: an nft run is a process start (15-20 ms on a
// 2-core test guest), and a sandbox's internet element is on the path of every
// create. Deleting an element (or from a table) that is not there is not an error.
func setElement(table, set string, addr netip.Addr, add bool) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("netlink to nftables: %w", err)
	}
	defer c.CloseLasting()
	s, err := c.GetSetByName(&nftables.Table{Name: table, Family: nftables.TableFamilyINet}, set)
	if err != nil {
		if !add && errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("finding set %s of table inet %s: %w", set, table, err)
	}
	elems := []nftables.SetElement{{Key: addr.AsSlice()}}
	if add {
		err = c.SetAddElements(s, elems)
	} else {
		err = c.SetDeleteElements(s, elems)
	}
	if err == nil {
		err = c.Flush()
	}
	if err != nil && !add && errors.Is(err, unix.ENOENT) {
		return nil // already absent
	}
	return err
}
