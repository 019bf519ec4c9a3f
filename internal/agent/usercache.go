package agent

import (
	"errors"
	"io/fs"
	"sync"
	"syscall"
	"time"
)

// userCache remembers the users a userDB found, and its id-to-name maps, while its
// files stay as they were.
// The agent looks up the caller's user on every request (each command, each file
// operation), and reading and parsing /etc/passwd and /etc/group took 1.1-1.6 ms of
// every command under gVisor on a loaded host (two opens and reads through the
// Sentry); checking that they did not change is two stats.
//
// A file counts as unchanged while its device, inode, size, modification and change
// times are. Tools that edit these files (useradd, usermod, sed -i) write a new file
// and rename it over the old one, a new inode; an edit in place changes the times. The
// kernel stamps those times with a coarse clock, so two edits within one tick could
// look like one: files changed less than racyWindow ago are read every time (what git
// does with "racily clean" index entries), and by the time their stamp is trusted, a
// later edit can only give a later one.
type userCache struct {
	// now is the clock racyWindow is measured on (nil: time.Now); tests move it.
	now func() time.Time

	mu    sync.Mutex
	stamp [2]fileStamp
	users map[string]User
	// ids and groups are the id-to-name maps for stamp (nil: not read yet).
	ids, groups map[uint32]string
	reads       int // lookups and name loads that read the files
}

// racyWindow is how long after a change a passwd or group file is read on every
// lookup rather than trusted by its stamp; far longer than any file time granularity.
const racyWindow = time.Second

// fileStamp is what tells a file's versions apart; the zero value is a missing file.
type fileStamp struct {
	exists       bool
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds since the epoch
}

// stampOf returns path's stamp, and whether it can be trusted now: false when the
// file cannot be stat'ed for another reason than its absence, or changed less than
// racyWindow before now.
func stampOf(path string, now time.Time) (fileStamp, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fileStamp{}, errors.Is(err, fs.ErrNotExist)
	}
	s := fileStamp{exists: true, dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
	settled := now.Add(-racyWindow).UnixNano()
	return s, s.mtime < settled && s.ctime < settled
}

// stampNow returns the stamp of db's files, and whether it can be trusted now.
func (c *userCache) stampNow(db userDB) ([2]fileStamp, bool) {
	now := time.Now()
	if c.now != nil {
		now = c.now()
	}
	pw, ok1 := stampOf(db.passwd, now)
	gr, ok2 := stampOf(db.group, now)
	return [2]fileStamp{pw, gr}, ok1 && ok2
}

// renew makes stamp the cache's, dropping what was kept for another.
// Preconditions: mu held.
func (c *userCache) renew(stamp [2]fileStamp) {
	if c.stamp != stamp || c.users == nil {
		c.stamp, c.users, c.ids, c.groups = stamp, map[string]User{}, nil, nil
	}
}

// names is db.readNames through the cache. The maps it returns must not be changed.
func (c *userCache) names(db userDB) (ids, groups map[uint32]string) {
	stamp, trusted := c.stampNow(db)
	c.mu.Lock()
	hit := trusted && c.stamp == stamp && c.ids != nil
	if hit {
		ids, groups = c.ids, c.groups
	} else {
		c.reads++
	}
	c.mu.Unlock()
	if hit {
		return ids, groups
	}
	ids, groups = db.readNames()
	if trusted {
		c.mu.Lock()
		c.renew(stamp)
		c.ids, c.groups = ids, groups
		c.mu.Unlock()
	}
	return ids, groups
}

// lookup is db.read through the cache.
func (c *userCache) lookup(db userDB, name string) (*User, error) {
	stamp, trusted := c.stampNow(db)
	if trusted {
		c.mu.Lock()
		u, hit := c.users[name]
		hit = hit && c.stamp == stamp
		c.mu.Unlock()
		if hit {
			return u.clone(), nil
		}
	}
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	u, err := db.read(name)
	if err != nil || !trusted {
		return u, err
	}
	// The files were stamped before they were read: what was read is that version or
	// a later one, which a later lookup's stamp then tells apart.
	c.mu.Lock()
	c.renew(stamp)
	c.users[name] = *u.clone()
	c.mu.Unlock()
	return u, nil
}

// clone returns a copy of u that shares nothing with it.
func (u *User) clone() *User {
	c := *u
	c.Groups = append([]uint32(nil), u.Groups...)
	return &c
}
