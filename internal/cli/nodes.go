package cli

import (
	"context"
	"fmt"
	"strconv"

	warren "github.com/warren-sh/warren/sdk/go"
)

// nodesList prints the nodes: name, state, address, sandboxes and free capacity.
func (a *app) nodesList(args []string) error {
	if _, err := a.parse(a.newFlags(), args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	nodes, err := c.Nodes(a.ctx)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(nodes)
	}
	rows := make([][]string, 0, len(nodes))
	for _, n := range nodes {
		f := n.Free
		rows = append(rows, []string{n.Name, n.State, n.Address, strconv.Itoa(n.Sandboxes),
			strconv.FormatFloat(f.CPUCores, 'f', -1, 64), strconv.FormatInt(f.MemoryMB, 10), strconv.FormatInt(f.DiskMB, 10),
			strconv.Itoa(f.Slots), fmtTime(n.HeartbeatAt)})
	}
	return a.table([]string{"NAME", "STATE", "ADDRESS", "SANDBOXES", "FREE CPU", "FREE MEMORY MIB", "FREE DISK MIB", "FREE SLOTS", "HEARTBEAT"}, rows)
}

func (a *app) nodesDrain(args []string) error {
	return a.setNode(args, (*warren.Client).DrainNode, func(name string) string {
		return "draining: it takes no new sandboxes; those it runs go on to their end (undo with 'warren nodes undrain " + name + "')"
	})
}

func (a *app) nodesUndrain(args []string) error {
	return a.setNode(args, (*warren.Client).UndrainNode, func(string) string { return "ready: it takes new sandboxes again" })
}

// setNode drains or undrains the node named by the one argument and says what it is now.
func (a *app) setNode(args []string, set func(*warren.Client, context.Context, string) (*warren.Node, error), what func(name string) string) error {
	pos, err := a.parse(a.newFlags(), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	n, err := set(c, a.ctx, pos[0])
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(n)
	}
	fmt.Fprintf(a.stdout, "node %s is %s\n", n.Name, what(n.Name))
	return nil
}
