package agent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestUserCache checks that the agent's user lookups read passwd and group again
// exactly when they may have changed: a rename over them (what useradd and sed -i
// do), an append, a change within the racy window, a user not found before.
func TestUserCache(t *testing.T) {
	dir := t.TempDir()
	passwd, group := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	write := func(path, content string) {
		t.Helper()
		tmp := path + ".new"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(passwd, "root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/bash\n")
	write(group, "root:x:0:\nuser:x:1000:\ndocker:x:999:user\n")
	later := time.Now().Add(time.Hour) // every file settled
	c := &userCache{now: func() time.Time { return later }}
	db := userDB{passwd: passwd, group: group, cache: c}
	lookup := func(name string, wantUID uint32, wantReads int) *User {
		t.Helper()
		u, err := db.lookup(name)
		if err != nil {
			t.Fatalf("lookup(%s): %v", name, err)
		}
		if u.UID != wantUID || c.reads != wantReads {
			t.Fatalf("lookup(%s): uid %d after %d reads, want uid %d after %d", name, u.UID, c.reads, wantUID, wantReads)
		}
		return u
	}

	u := lookup("user", 1000, 1)
	if len(u.Groups) != 2 || u.Groups[1] != 999 {
		t.Fatalf("groups %v, want [1000 999]", u.Groups)
	}
	u.Groups[0] = 4242 // the caller's copy
	if u := lookup("user", 1000, 1); u.Groups[0] != 1000 {
		t.Fatalf("a caller's change reached the cache: groups %v", u.Groups)
	}
	lookup("root", 0, 2)
	lookup("root", 0, 2)

	// usermod: a new file renamed over the old one, the same size.
	write(passwd, "root:x:0:0:root:/root:/bin/bash\nuser:x:1001:1000::/home/user:/bin/bash\n")
	lookup("user", 1001, 3)
	lookup("user", 1001, 3)

	// An unknown user is not remembered: once added (in place), it is found.
	if _, err := db.lookup("dev"); !errors.Is(err, errUnknownUser) {
		t.Fatalf("lookup(dev) before it exists: %v", err)
	}
	f, err := os.OpenFile(passwd, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("dev:x:1002:1002::/home/dev:/bin/sh\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	lookup("dev", 1002, 5)
	// A group change alone counts too.
	write(group, "root:x:0:\nuser:x:1000:\n")
	if u := lookup("user", 1001, 6); len(u.Groups) != 1 {
		t.Fatalf("groups after the group file changed: %v", u.Groups)
	}

	// Files changed within the racy window are read on every lookup: an edit in place
	// in the same clock tick as the last one would keep every stamp.
	c.now = time.Now
	write(passwd, "user:x:1003:1000::/home/user:/bin/bash\n")
	lookup("user", 1003, 7)
	lookup("user", 1003, 8)

	// Without the files (a scratch image), root is known, and remembered.
	bare := userDB{passwd: filepath.Join(dir, "none"), group: filepath.Join(dir, "none"), cache: &userCache{}}
	for i := 0; i < 2; i++ {
		if u, err := bare.lookup("root"); err != nil || u.UID != 0 || bare.cache.reads != 1 {
			t.Fatalf("root without a passwd file: %+v, %v after %d reads", u, err, bare.cache.reads)
		}
	}
}

// TestUserCacheNames checks that the id-to-name maps of file listings come from the
// cache while the files keep their stamp, and are read again once they change.
func TestUserCacheNames(t *testing.T) {
	dir := t.TempDir()
	passwd, group := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path+".new", []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	write(passwd, "root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/bash\n")
	write(group, "root:x:0:\nuser:x:1000:\n")
	later := time.Now().Add(time.Hour)
	c := &userCache{now: func() time.Time { return later }}
	db := userDB{passwd: passwd, group: group, cache: c}
	check := func(uid uint32, wantUser, wantGroup string, wantReads int) {
		t.Helper()
		n := newIDNames(db)
		if u, g := n.user(uid), n.group(uid); u != wantUser || g != wantGroup || c.reads != wantReads {
			t.Fatalf("names of %d: %s:%s after %d reads, want %s:%s after %d", uid, u, g, c.reads, wantUser, wantGroup, wantReads)
		}
	}
	check(1000, "user", "user", 1)
	check(1000, "user", "user", 1)
	if _, err := db.lookup("user"); err != nil || c.reads != 2 { // a user lookup keeps the maps
		t.Fatalf("lookup: %v after %d reads", err, c.reads)
	}
	check(1000, "user", "user", 2)
	write(group, "root:x:0:\nstaff:x:1000:\n")
	check(1000, "user", "staff", 3)
	check(1000, "user", "staff", 3)
}
