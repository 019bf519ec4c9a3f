package agent

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"connectrpc.com/connect"
)

func TestUserDB(t *testing.T) {
	db := userDB{passwd: "testdata/passwd", group: "testdata/group"}
	tests := []struct {
		name string
		want *User
		err  error
	}{
		{"root", &User{Name: "root", UID: 0, GID: 0, Groups: []uint32{0}, Home: "/root"}, nil},
		{"user", &User{Name: "user", UID: 1000, GID: 1000, Groups: []uint32{1000, 999, 27}, Home: "/home/user"}, nil},
		{"nohome", &User{Name: "nohome", UID: 1001, GID: 1001, Groups: []uint32{1001}, Home: "/"}, nil},
		{"broken", nil, errUnknownUser},
		{"other", nil, errUnknownUser},
		{"", nil, errUnknownUser},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.lookup(tc.name)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if tc.want == nil {
				return
			}
			if got.Name != tc.want.Name || got.UID != tc.want.UID || got.GID != tc.want.GID || got.Home != tc.want.Home || !slices.Equal(got.Groups, tc.want.Groups) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	// Without a passwd file (a scratch or busybox image) root still is uid 0, and
	// anyone else is unknown (not a read error).
	bare := userDB{passwd: "testdata/nonexistent", group: "testdata/nonexistent"}
	if got, err := bare.lookup("root"); err != nil || got.UID != 0 || got.GID != 0 || got.Home != "/root" || !slices.Equal(got.Groups, []uint32{0}) {
		t.Errorf("root without a passwd file: %+v, %v", got, err)
	}
	if _, err := bare.lookup("user"); !errors.Is(err, errUnknownUser) {
		t.Errorf("user without a passwd file: %v, want errUnknownUser", err)
	}
	names := newIDNames(db)
	if names.user(1000) != "user" || names.group(999) != "docker" || names.user(4242) != "4242" {
		t.Fatalf("id names: %s %s %s", names.user(1000), names.group(999), names.user(4242))
	}
}

func TestResolvePath(t *testing.T) {
	u := &User{Name: "user", Home: "/home/user"}
	tests := []struct{ in, workdir, want string }{
		{"", "", "/home/user"},
		{"", "/work", "/work"},
		{"~", "/work", "/home/user"},
		{"~/a/../b", "/work", "/home/user/b"},
		{"a/b", "", "/home/user/a/b"},
		{"a/b", "/work", "/work/a/b"},
		{"/abs//x/./y/", "/work", "/abs/x/y"},
		{"../..", "", "/"},
		{"~other", "", "/home/user/~other"},
	}
	for _, tc := range tests {
		if got := resolvePath(tc.in, u, tc.workdir); got != tc.want {
			t.Errorf("resolvePath(%q, workdir %q) = %q, want %q", tc.in, tc.workdir, got, tc.want)
		}
	}
}

func TestAcceptedEncodings(t *testing.T) {
	tests := []struct {
		header         string
		gzip, identity bool
	}{
		{"", false, true},
		{"gzip, deflate", true, true},
		{"gzip;q=0", false, true},
		{"identity;q=0", false, false},
		{"gzip, identity;q=0", true, false},
		{"*", true, true},
		{"*;q=0", false, false},
		{"br, *;q=0, gzip", true, false},
		{"GZIP;q=0.5", true, true},
	}
	for _, tc := range tests {
		g, i := acceptedEncodings(tc.header)
		if g != tc.gzip || i != tc.identity {
			t.Errorf("%q: gzip %v identity %v, want %v %v", tc.header, g, i, tc.gzip, tc.identity)
		}
	}
}

// An unknown user is unauthenticated (as envd answers); a passwd file the agent cannot
// read (here a directory) is the sandbox's state, which the server shows as a conflict
// rather than taking it for a refused access token.
func TestRPCUserCodes(t *testing.T) {
	for _, tc := range []struct {
		name, passwd, user string
		want               connect.Code
	}{
		{"known", "testdata/passwd", "user", 0},
		{"unknown user", "testdata/passwd", "no-such-user", connect.CodeUnauthenticated},
		{"unreadable passwd", t.TempDir(), "user", connect.CodeFailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Agent{users: userDB{passwd: tc.passwd, group: "testdata/group"}}
			_, err := a.rpcUser(http.Header{"Authorization": {basicAuth(tc.user)}})
			if got := connect.CodeOf(err); err != nil && got != tc.want || err == nil && tc.want != 0 {
				t.Errorf("rpcUser(%s): %v (code %v), want code %v", tc.user, err, got, tc.want)
			}
		})
	}
}
