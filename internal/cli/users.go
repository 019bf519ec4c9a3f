package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	warren "github.com/warren-sh/warren/sdk/go"
)

var roles = []string{warren.RoleOwner, warren.RoleAdmin, warren.RoleMember, warren.RoleViewer}

func (a *app) usersCreate(args []string) error {
	fs := a.newFlags()
	email := fs.String("email", "", "the user's email address (required)")
	password := fs.String("password", "", "at least 8 characters (default: read from standard input)")
	role := fs.String("role", warren.RoleMember, "role: "+strings.Join(roles, ", "))
	team := fs.String("team", "", "team id (required for the platform admin; others add to their own team)")
	name := fs.String("name", "", "display name")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *email == "" {
		return usagef("--email is required")
	}
	if err := a.passwordFrom(password, "Password for "+*email+": "); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	u, err := c.CreateUser(a.ctx, warren.UserOptions{Email: *email, Password: *password, Role: *role, TeamID: *team, Name: *name})
	if err != nil {
		return err
	}
	return a.showUser(u)
}

func (a *app) showUser(u *warren.User) error {
	if a.json() {
		return a.printJSON(u)
	}
	return a.fields([][2]string{
		{"id", u.ID}, {"email", u.Email}, {"name", orDash(u.Name)}, {"role", u.Role}, {"team", u.TeamID},
		{"created", fmtTime(u.CreatedAt)}, {"last login", fmtTime(u.LastLoginAt)},
	})
}

func (a *app) usersList(args []string) error {
	fs := a.newFlags()
	team := fs.String("team", "", "only this team's users (platform admin)")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	users, err := c.ListUsers(a.ctx, *team)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(users)
	}
	rows := make([][]string, 0, len(users))
	for _, u := range users {
		rows = append(rows, []string{u.ID, u.Email, orDash(u.Name), u.Role, u.TeamID, fmtTime(u.CreatedAt), fmtTime(u.LastLoginAt)})
	}
	return a.table([]string{"ID", "EMAIL", "NAME", "ROLE", "TEAM", "CREATED", "LAST LOGIN"}, rows)
}

func (a *app) usersUpdate(args []string) error {
	fs := a.newFlags()
	role := fs.String("role", "", "new role: "+strings.Join(roles, ", "))
	name := fs.String("name", "", "new display name")
	password := fs.String("password", "", "new password (\"-\": read from standard input)")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	var u warren.UserUpdate
	if given(fs, "role") {
		u.Role = role
	}
	if given(fs, "name") {
		u.Name = name
	}
	if given(fs, "password") {
		if *password == "-" {
			*password = ""
			if err := a.passwordFrom(password, "New password: "); err != nil {
				return err
			}
		}
		u.Password = password
	}
	if u == (warren.UserUpdate{}) {
		return usagef("nothing to change: give --role, --name or --password")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	user, err := c.UpdateUser(a.ctx, pos[0], u)
	if err != nil {
		return err
	}
	return a.showUser(user)
}

func (a *app) usersDelete(args []string) error {
	return a.removeByID(args, "deleted", "", func(c *warren.Client, id string) error { return c.DeleteUser(a.ctx, id) })
}

// login signs in with a console user's email and password and prints the session
// token, which works wherever an API key does.
func (a *app) login(args []string) error {
	fs := a.newFlags()
	email := fs.String("email", "", "the user's email address (required)")
	password := fs.String("password", "", "the password (default: read from standard input)")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *email == "" {
		return usagef("--email is required")
	}
	if err := a.passwordFrom(password, "Password for "+*email+": "); err != nil {
		return err
	}
	c, err := a.newClient("") // logging in needs no key
	if err != nil {
		return err
	}
	s, err := c.Login(a.ctx, *email, *password)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(s)
	}
	if err := a.fields([][2]string{
		{"user", s.User.Email}, {"role", s.User.Role}, {"team", s.Team.Name + " (" + s.Team.ID + ")"},
		{"expires", fmtTime(s.ExpiresAt)}, {"token", s.Token},
	}); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "\nUse the token as an API key until it expires:\n  export WARREN_API_KEY=%s\n", s.Token)
	return nil
}

// passwordFrom fills *password, when empty, from standard input: a prompt without
// echo on a terminal, else the first line.
func (a *app) passwordFrom(password *string, prompt string) error {
	if *password != "" {
		return nil
	}
	var line string
	var err error
	if f, ok := a.stdin.(*os.File); ok && isTerminal(f) {
		fmt.Fprint(a.stderr, prompt)
		line, err = readNoEcho(f)
		fmt.Fprintln(a.stderr)
	} else {
		line, err = bufio.NewReader(a.stdin).ReadString('\n')
		if err == io.EOF {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("reading the password: %w", err)
	}
	*password = strings.TrimRight(line, "\r\n")
	if *password == "" {
		return usagef("no password: pass --password or write it to standard input")
	}
	return nil
}
