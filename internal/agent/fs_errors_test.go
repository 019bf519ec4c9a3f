package agent

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"connectrpc.com/connect"
)

// TestFSErrorMapping: every OS refusal maps to a client-side code with a message
// naming the path and what to do; only the unforeseen is Internal.
func TestFSErrorMapping(t *testing.T) {
	pathErr := func(errno syscall.Errno) error { return &os.PathError{Op: "unlinkat", Path: "/p", Err: errno} }
	linkErr := func(errno syscall.Errno) error { return &os.LinkError{Op: "rename", Old: "/a", New: "/b", Err: errno} }
	cases := []struct {
		name string
		err  error
		move bool // through moveError("/a", "/b")
		code connect.Code
		hint string
	}{
		{"missing", pathErr(syscall.ENOENT), false, connect.CodeNotFound, "does not exist"},
		{"read-only", pathErr(syscall.EROFS), false, connect.CodeFailedPrecondition, "read-only filesystem"},
		{"EACCES", pathErr(syscall.EACCES), false, connect.CodePermissionDenied, "use another path"},
		{"EPERM", pathErr(syscall.EPERM), false, connect.CodePermissionDenied, "even as root"},
		{"busy", pathErr(syscall.EBUSY), false, connect.CodeFailedPrecondition, "mount point"},
		{"cross-device", pathErr(syscall.EXDEV), false, connect.CodeFailedPrecondition, "copy it instead"},
		{"not empty", pathErr(syscall.ENOTEMPTY), false, connect.CodeFailedPrecondition, "not empty"},
		{"name too long", pathErr(syscall.ENAMETOOLONG), false, connect.CodeInvalidArgument, "too long"},
		{"no space", pathErr(syscall.ENOSPC), false, connect.CodeResourceExhausted, "no space"},
		{"unforeseen", pathErr(syscall.EIO), false, connect.CodeInternal, "/p"},
		{"move across filesystems", linkErr(syscall.EXDEV), true, connect.CodeFailedPrecondition, "copy it instead"},
		{"move a mount point", linkErr(syscall.EBUSY), true, connect.CodeFailedPrecondition, "mount point"},
		{"move onto a full directory", linkErr(syscall.ENOTEMPTY), true, connect.CodeFailedPrecondition, "remove it first"},
		{"move a file onto a directory", linkErr(syscall.EISDIR), true, connect.CodeFailedPrecondition, "a file cannot replace"},
		{"move a file onto a directory (EEXIST, /a missing so not a directory)", linkErr(syscall.EEXIST), true, connect.CodeFailedPrecondition, "a file cannot replace"},
		{"move a directory onto a file", linkErr(syscall.ENOTDIR), true, connect.CodeFailedPrecondition, "a directory cannot replace"},
		{"move into itself", linkErr(syscall.EINVAL), true, connect.CodeInvalidArgument, "into itself"},
		{"move refused", linkErr(syscall.EPERM), true, connect.CodePermissionDenied, "even as root"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.move {
				err = moveError(tc.err, "/a", "/b")
			} else {
				err = fsError(tc.err, "/p")
			}
			var ce *connect.Error
			if !errors.As(err, &ce) || ce.Code() != tc.code || !strings.Contains(ce.Message(), tc.hint) {
				t.Errorf("%v: %v, want %v saying %q", tc.err, err, tc.code, tc.hint)
			}
		})
	}
	if !errors.Is(pathErr(syscall.EACCES), fs.ErrPermission) {
		t.Fatal("EACCES is not fs.ErrPermission")
	}
}
