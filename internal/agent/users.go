package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// errUnknownUser is returned by userDB.lookup for a name that is not in /etc/passwd.
var errUnknownUser = errors.New("unknown user")

// User is an account from /etc/passwd with its groups from /etc/group.
type User struct {
	Name string
	UID  uint32
	GID  uint32
	// Groups holds the supplementary group ids, including GID.
	Groups []uint32
	Home   string
}

// userDB reads accounts from passwd/group files. It parses the files itself, so that
// the agent builds without cgo, and sees users added at run time: with a cache, it
// reads them again whenever they changed (userCache), else on every lookup.
type userDB struct {
	passwd string // path of the passwd file, normally /etc/passwd
	group  string // path of the group file, normally /etc/group
	cache  *userCache
}

func systemUsers() userDB {
	return userDB{passwd: "/etc/passwd", group: "/etc/group", cache: &userCache{}}
}

// lookup returns the named user, or an error wrapping errUnknownUser.
func (db userDB) lookup(name string) (*User, error) {
	if db.cache != nil {
		return db.cache.lookup(db, name)
	}
	return db.read(name)
}

// read is lookup from the files.
func (db userDB) read(name string) (*User, error) {
	if name == "" {
		return nil, fmt.Errorf("empty user name: %w", errUnknownUser)
	}
	var u *User
	err := scanColonFile(db.passwd, func(f []string) bool {
		// name:password:uid:gid:gecos:home:shell
		if len(f) < 7 || f[0] != name {
			return true
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			return true
		}
		u = &User{Name: name, UID: uint32(uid), GID: uint32(gid), Home: f[5]}
		return false
	})
	// An image without a passwd file (scratch, busybox) has no users but root, whom
	// uid 0 is anyway: root is known without an entry, as in Docker.
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", db.passwd, err)
	}
	if u == nil && name == "root" {
		u = &User{Name: "root", Home: "/root"}
	}
	if u == nil {
		return nil, fmt.Errorf("user %q: %w", name, errUnknownUser)
	}
	if u.Home == "" {
		u.Home = "/"
	}
	u.Groups = []uint32{u.GID}
	// A missing group file only costs the supplementary groups.
	_ = scanColonFile(db.group, func(f []string) bool {
		// name:password:gid:member,member
		if len(f) < 4 {
			return true
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil || uint32(gid) == u.GID {
			return true
		}
		for _, m := range strings.Split(f[3], ",") {
			if strings.TrimSpace(m) == name {
				u.Groups = append(u.Groups, uint32(gid))
				break
			}
		}
		return true
	})
	return u, nil
}

// scanColonFile calls fn with the fields of every non-comment line of a
// passwd-style file until fn returns false.
func scanColonFile(path string, fn func([]string) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		if !fn(strings.Split(line, ":")) {
			return nil
		}
	}
	return sc.Err()
}

// idNames maps uids and gids to names for EntryInfo.owner/group. It loads the
// passwd and group files once, on first use (through the cache, when the userDB has
// one), so a ListDir of many entries reads them once. Unknown ids are shown as numbers.
// The maps may be shared with other requests: they are only read.
type idNames struct {
	db     userDB
	once   sync.Once
	users  map[uint32]string
	groups map[uint32]string
}

func newIDNames(db userDB) *idNames { return &idNames{db: db} }

func (n *idNames) load() {
	if n.db.cache != nil {
		n.users, n.groups = n.db.cache.names(n.db)
		return
	}
	n.users, n.groups = n.db.readNames()
}

// readNames reads the id-to-name maps of the passwd and group files.
func (db userDB) readNames() (users, groups map[uint32]string) {
	users, groups = map[uint32]string{}, map[uint32]string{}
	load := func(path string, idField int, into map[uint32]string) {
		_ = scanColonFile(path, func(f []string) bool {
			if len(f) > idField {
				if id, err := strconv.ParseUint(f[idField], 10, 32); err == nil {
					if _, dup := into[uint32(id)]; !dup {
						into[uint32(id)] = f[0]
					}
				}
			}
			return true
		})
	}
	load(db.passwd, 2, users)
	load(db.group, 2, groups)
	return users, groups
}

func (n *idNames) user(uid uint32) string {
	n.once.Do(n.load)
	if name, ok := n.users[uid]; ok {
		return name
	}
	return strconv.FormatUint(uint64(uid), 10)
}

func (n *idNames) group(gid uint32) string {
	n.once.Do(n.load)
	if name, ok := n.groups[gid]; ok {
		return name
	}
	return strconv.FormatUint(uint64(gid), 10)
}

// resolvePath turns a path from a request into a clean absolute path (§3.2): a leading
// "~" or "~/" expands to the user's home, a relative path is taken relative to
// workdir when set and to the home otherwise. An empty path yields that base directory.
func resolvePath(p string, u *User, workdir string) string {
	switch {
	case p == "~":
		return filepath.Clean(u.Home)
	case strings.HasPrefix(p, "~/"):
		return filepath.Join(u.Home, p[2:])
	case filepath.IsAbs(p):
		return filepath.Clean(p)
	}
	base := workdir
	if base == "" {
		base = u.Home
	}
	return filepath.Join(base, p)
}

// ensureDirs creates dir and any missing parents with mode 0755, owned by uid:gid.
// Directories that already exist are left alone. It fails if a component exists and
// is not a directory.
func ensureDirs(dir string, uid, gid int) error {
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists and is not a directory: %w", dir, errNotDir)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := ensureDirs(parent, uid, gid); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			// Lost a race with another creator; fine if it is a directory.
			if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
				return nil
			}
		}
		return err
	}
	return os.Lchown(dir, uid, gid)
}

// errNotDir marks "a path component is not a directory" for the edges to map to 400.
var errNotDir = errors.New("not a directory")
