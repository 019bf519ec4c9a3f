package cli

import (
	"fmt"
	"strconv"
)

func (a *app) keysCreate(args []string) error {
	fs := a.newFlags()
	name := fs.String("name", "", "a label to tell the key apart")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	k, err := c.CreateKey(a.ctx, *name)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(k)
	}
	if err := a.fields([][2]string{
		{"id", k.ID}, {"name", orDash(k.Name)}, {"prefix", k.Prefix}, {"created", fmtTime(k.CreatedAt)}, {"key", k.Key},
	}); err != nil {
		return err
	}
	fmt.Fprintln(a.stderr, "\nThis is the only time the key is shown; store it now.")
	return nil
}

func (a *app) keysList(args []string) error {
	if _, err := a.parse(a.newFlags(), args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	keys, err := c.ListKeys(a.ctx)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(keys)
	}
	rows := make([][]string, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, []string{k.ID, orDash(k.Name), k.Prefix, fmtTime(k.CreatedAt), fmtTime(k.LastUsedAt), fmtTime(k.RevokedAt), strconv.FormatBool(k.Admin)})
	}
	return a.table([]string{"ID", "NAME", "PREFIX", "CREATED", "LAST USED", "REVOKED", "ADMIN"}, rows)
}

func (a *app) keysRevoke(args []string) error {
	pos, err := a.parse(a.newFlags(), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if err := c.RevokeKey(a.ctx, pos[0]); err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(map[string]any{"id": pos[0], "revoked": true})
	}
	fmt.Fprintf(a.stdout, "revoked %s\n", pos[0])
	return nil
}

func (a *app) templates(args []string) error {
	if _, err := a.parse(a.newFlags(), args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	ts, err := c.Templates(a.ctx)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(ts)
	}
	rows := make([][]string, 0, len(ts))
	for _, t := range ts {
		size := "-"
		if t.SizeBytes > 0 {
			size = fmtBytes(t.SizeBytes)
		}
		rows = append(rows, []string{t.ID, strconv.FormatBool(t.Ready), fmtTime(t.BuiltAt), size, orDash(t.Description)})
	}
	return a.table([]string{"ID", "READY", "BUILT", "SIZE", "DESCRIPTION"}, rows)
}
