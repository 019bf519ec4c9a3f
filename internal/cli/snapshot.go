package cli

import (
	"fmt"

	warren "github.com/warren-sh/warren/sdk/go"
)

func (a *app) snapshotCreate(args []string) error {
	fs := a.newFlags()
	name := fs.String("name", "", "a name unique in the team, which creates may give instead of the id")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	snap, err := c.Sandbox(pos[0]).CreateSnapshot(a.ctx, *name)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(snap)
	}
	if err := a.showSnapshot(snap); err != nil {
		return err
	}
	ref := snap.ID
	if snap.Name != "" {
		ref = snap.Name
	}
	fmt.Fprintf(a.stderr, "\nStart a sandbox from it: warren sandbox create --snapshot %s\n", ref)
	return nil
}

func (a *app) showSnapshot(s *warren.Snapshot) error {
	return a.fields([][2]string{
		{"id", s.ID},
		{"name", orDash(s.Name)},
		{"sandbox", s.SandboxID},
		{"template", s.Template},
		{"runtime", orDash(s.Runtime)},
		{"size", fmtBytes(s.SizeBytes)},
		{"created", fmtTime(s.CreatedAt)},
	})
}

func (a *app) snapshotList(args []string) error {
	fs := a.newFlags()
	sandbox := fs.String("sandbox", "", "only the snapshots of this sandbox")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	all := []warren.Snapshot{}
	for s, err := range c.AllSnapshots(a.ctx, warren.SnapshotListOptions{SandboxID: *sandbox, Limit: 100}) {
		if err != nil {
			return err
		}
		all = append(all, *s)
	}
	if a.json() {
		return a.printJSON(all)
	}
	rows := make([][]string, 0, len(all))
	for _, s := range all {
		rows = append(rows, []string{s.ID, orDash(s.Name), s.SandboxID, s.Template, fmtBytes(s.SizeBytes), fmtTime(s.CreatedAt)})
	}
	return a.table([]string{"ID", "NAME", "SANDBOX", "TEMPLATE", "SIZE", "CREATED"}, rows)
}

func (a *app) snapshotGet(args []string) error {
	pos, err := a.parse(a.newFlags(), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	snap, err := c.GetSnapshot(a.ctx, pos[0])
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(snap)
	}
	return a.showSnapshot(snap)
}

func (a *app) snapshotDelete(args []string) error {
	return a.removeByID(args, "deleted", "snapshot ", func(c *warren.Client, id string) error { return c.DeleteSnapshot(a.ctx, id) })
}
