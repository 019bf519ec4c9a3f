package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-sh/warren/internal/envdpb/filesystem"
	"github.com/warren-sh/warren/internal/envdpb/filesystem/filesystemconnect"
)

// metadataXattrPrefix namespaces file metadata (X-Metadata-* on upload,
// EntryInfo.metadata) among a file's extended attributes.
const metadataXattrPrefix = "user.e2b."

// filesystemService implements filesystem.Filesystem. Operations run with the
// agent's privileges; what they create is owned by the requesting user.
type filesystemService struct{ a *Agent }

var _ filesystemconnect.FilesystemHandler = (*filesystemService)(nil)

// fsError maps an OS error on path to a Connect error whose message says what went
// wrong and what to do. The agent runs as root, so a refusal comes from the
// filesystem itself (a mount point, a read-only or kernel-provided file), not from
// the requesting user's permissions: FailedPrecondition (or PermissionDenied), for
// the caller to choose another path or way, never Internal.
func fsError(err error, path string) error {
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return err
	case errors.Is(err, fs.ErrNotExist):
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("path '%s' does not exist", path))
	case errors.Is(err, syscall.EROFS):
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("'%s' is on a read-only filesystem; use a path under /home/user or /tmp instead", path))
	case errors.Is(err, fs.ErrPermission):
		return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("permission denied on '%s': the sandbox's filesystem does not allow this even as root (a protected or kernel-provided file, such as under /proc or /sys); use another path", path))
	case errors.Is(err, syscall.EBUSY):
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("'%s' is busy: it is a mount point (as /etc/hosts, /etc/hostname and /etc/resolv.conf are) or in use, so it cannot be moved or removed; write to it instead", path))
	case errors.Is(err, syscall.EXDEV):
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("'%s' is on another filesystem; copy it instead (read it, then write the copy)", path))
	case errors.Is(err, syscall.ENOTEMPTY):
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("directory '%s' is not empty; remove what is in it first", path))
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, errNotDir):
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("a component of '%s' is not a directory", path))
	case errors.Is(err, syscall.EISDIR):
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("'%s' is a directory", path))
	case errors.Is(err, syscall.ENAMETOOLONG):
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("path '%s' is too long", path))
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("no space left for '%s'", path))
	case errors.Is(err, syscall.ELOOP):
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("too many levels of symlinks at '%s'", path))
	}
	return connect.NewError(connect.CodeInternal, fmt.Errorf("%s: %w", path, err))
}

// moveError maps an error of renaming src to dst, naming both paths and what to do.
func moveError(err error, src, dst string) error {
	switch {
	case errors.Is(err, syscall.EXDEV):
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("cannot move '%s' to '%s': they are on different filesystems, or '%s' is a mount point (as /etc/hosts, /etc/hostname and /etc/resolv.conf are); copy it instead (read it, then write the copy)", src, dst, src))
	case errors.Is(err, syscall.EBUSY):
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("cannot move '%s' to '%s': one of them is a mount point or in use; copy it instead (read it, then write the copy)", src, dst))
	case errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.EEXIST) && !isDir(src):
		// Go's os.Rename says EEXIST for a file onto a directory.
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("cannot move '%s' to '%s': '%s' is a directory, which a file cannot replace; remove it first or choose another destination", src, dst, dst))
	case errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("cannot move '%s' to '%s': '%s' is a directory that is not empty; remove it first or choose another destination", src, dst, dst))
	case errors.Is(err, syscall.ENOTDIR):
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("cannot move directory '%s' to '%s': '%s' is not a directory, which a directory cannot replace; remove it first or choose another destination", src, dst, dst))
	case errors.Is(err, syscall.EINVAL):
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("cannot move '%s' into itself ('%s'); choose a destination outside it", src, dst))
	}
	return fsError(err, dst)
}

// isDir reports whether path is a directory (not following a final symlink).
func isDir(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.IsDir()
}

// entryInfo describes path without following a final symlink. For a symlink, type
// and mode are those of its target (as envd reports them) and symlink_target is the
// resolved target; a dangling symlink has type SYMLINK.
func entryInfo(path string, names *idNames) (*filesystem.EntryInfo, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(path)
	e := &filesystem.EntryInfo{
		Name:         name,
		Path:         path,
		Size:         fi.Size(),
		Mode:         uint32(fi.Mode().Perm()),
		Permissions:  fi.Mode().String(),
		ModifiedTime: timestamppb.New(fi.ModTime()),
		Type:         fileType(fi.Mode()),
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.Owner = names.user(st.Uid)
		e.Group = names.group(st.Gid)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			target, _ = os.Readlink(path)
		}
		e.SymlinkTarget = &target
		if tfi, err := os.Stat(path); err == nil {
			e.Type = fileType(tfi.Mode())
			e.Mode = uint32(tfi.Mode().Perm())
		} else {
			e.Type = filesystem.FileType_FILE_TYPE_SYMLINK
		}
		return e, nil
	}
	e.Metadata = readMetadata(path)
	return e, nil
}

func fileType(m os.FileMode) filesystem.FileType {
	switch {
	case m.IsRegular():
		return filesystem.FileType_FILE_TYPE_FILE
	case m.IsDir():
		return filesystem.FileType_FILE_TYPE_DIRECTORY
	case m&os.ModeSymlink != 0:
		return filesystem.FileType_FILE_TYPE_SYMLINK
	}
	return filesystem.FileType_FILE_TYPE_UNSPECIFIED
}

// readMetadata returns the user.e2b.* xattrs of path, or nil.
func readMetadata(path string) map[string]string {
	size, err := unix.Listxattr(path, nil)
	if err != nil || size == 0 {
		return nil
	}
	buf := make([]byte, size)
	if size, err = unix.Listxattr(path, buf); err != nil {
		return nil
	}
	var md map[string]string
	for _, attr := range strings.Split(string(buf[:size]), "\x00") {
		key, ok := strings.CutPrefix(attr, metadataXattrPrefix)
		if !ok || key == "" {
			continue
		}
		vsize, err := unix.Getxattr(path, attr, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vsize)
		if vsize, err = unix.Getxattr(path, attr, val); err != nil {
			continue
		}
		if md == nil {
			md = map[string]string{}
		}
		md[key] = string(val[:vsize])
	}
	return md
}

// replaceMetadata removes every user.e2b.* xattr of path and stores md instead.
func replaceMetadata(path string, md map[string]string) error {
	for key := range readMetadata(path) {
		if err := unix.Removexattr(path, metadataXattrPrefix+key); err != nil && !errors.Is(err, unix.ENODATA) {
			return err
		}
	}
	for k, v := range md {
		if err := unix.Setxattr(path, metadataXattrPrefix+k, []byte(v), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				return fmt.Errorf("the filesystem holding %s does not support extended attributes, so metadata cannot be stored: %w", path, err)
			}
			return err
		}
	}
	return nil
}

// Stat describes one path.
func (s *filesystemService) Stat(ctx context.Context, req *connect.Request[filesystem.StatRequest]) (*connect.Response[filesystem.StatResponse], error) {
	u, err := s.a.rpcUser(req.Header())
	if err != nil {
		return nil, err
	}
	path := s.a.resolveFor(req.Msg.GetPath(), u)
	e, err := entryInfo(path, newIDNames(s.a.users))
	if err != nil {
		return nil, fsError(err, path)
	}
	return connect.NewResponse(&filesystem.StatResponse{Entry: e}), nil
}

// MakeDir creates a directory and its parents, owned by the user.
func (s *filesystemService) MakeDir(ctx context.Context, req *connect.Request[filesystem.MakeDirRequest]) (*connect.Response[filesystem.MakeDirResponse], error) {
	u, err := s.a.rpcUser(req.Header())
	if err != nil {
		return nil, err
	}
	path := s.a.resolveFor(req.Msg.GetPath(), u)
	if fi, err := os.Stat(path); err == nil {
		if fi.IsDir() {
			return nil, connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("directory '%s' already exists", path))
		}
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("path '%s' already exists and is not a directory", path))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fsError(err, path)
	}
	if err := ensureDirs(path, int(u.UID), int(u.GID)); err != nil {
		return nil, fsError(err, path)
	}
	e, err := entryInfo(path, newIDNames(s.a.users))
	if err != nil {
		return nil, fsError(err, path)
	}
	return connect.NewResponse(&filesystem.MakeDirResponse{Entry: e}), nil
}

// Move renames source to destination, creating the destination's parents.
func (s *filesystemService) Move(ctx context.Context, req *connect.Request[filesystem.MoveRequest]) (*connect.Response[filesystem.MoveResponse], error) {
	u, err := s.a.rpcUser(req.Header())
	if err != nil {
		return nil, err
	}
	src := s.a.resolveFor(req.Msg.GetSource(), u)
	dst := s.a.resolveFor(req.Msg.GetDestination(), u)
	if _, err := os.Lstat(src); err != nil {
		return nil, fsError(err, src)
	}
	if err := ensureDirs(filepath.Dir(dst), int(u.UID), int(u.GID)); err != nil {
		return nil, fsError(err, dst)
	}
	if err := os.Rename(src, dst); err != nil {
		return nil, moveError(err, src, dst)
	}
	e, err := entryInfo(dst, newIDNames(s.a.users))
	if err != nil {
		return nil, fsError(err, dst)
	}
	return connect.NewResponse(&filesystem.MoveResponse{Entry: e}), nil
}

// ListDir lists entries below a directory up to depth levels (default 1). Paths
// are based on the requested path, even when it is a symlink to a directory;
// symlinks below it are listed but not followed.
func (s *filesystemService) ListDir(ctx context.Context, req *connect.Request[filesystem.ListDirRequest]) (*connect.Response[filesystem.ListDirResponse], error) {
	u, err := s.a.rpcUser(req.Header())
	if err != nil {
		return nil, err
	}
	depth := int(req.Msg.GetDepth())
	if depth == 0 {
		depth = 1
	}
	path := s.a.resolveFor(req.Msg.GetPath(), u)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fsError(err, path)
	}
	if !fi.IsDir() {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("path '%s' is not a directory", path))
	}
	names := newIDNames(s.a.users)
	var entries []*filesystem.EntryInfo
	var walk func(dir string, level int) error
	walk = func(dir string, level int) error {
		des, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, de := range des {
			if err := ctx.Err(); err != nil {
				return err
			}
			p := filepath.Join(dir, de.Name())
			e, err := entryInfo(p, names)
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed while listing
			} else if err != nil {
				return err
			}
			entries = append(entries, e)
			if de.IsDir() && level < depth {
				if err := walk(p, level+1); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(path, 1); err != nil {
		if ctx.Err() != nil {
			return nil, connect.NewError(connect.CodeCanceled, err)
		}
		return nil, fsError(err, path)
	}
	return connect.NewResponse(&filesystem.ListDirResponse{Entries: entries}), nil
}

// Remove deletes a path recursively; a missing path is not an error.
func (s *filesystemService) Remove(ctx context.Context, req *connect.Request[filesystem.RemoveRequest]) (*connect.Response[filesystem.RemoveResponse], error) {
	u, err := s.a.rpcUser(req.Header())
	if err != nil {
		return nil, err
	}
	path := s.a.resolveFor(req.Msg.GetPath(), u)
	if path == "/" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("refusing to remove /"))
	}
	if err := os.RemoveAll(path); err != nil {
		return nil, fsError(err, path)
	}
	return connect.NewResponse(&filesystem.RemoveResponse{}), nil
}
