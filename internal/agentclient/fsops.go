package agentclient

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/envdpb/filesystem"
)

// This file holds the file operations beyond reading, writing, listing and Stat.

// MakeDir creates path and its parents, owned by user. created is false when the
// directory already existed; a file (or a file as one of the parents) in the way is
// KindConflict. What the filesystem refuses (a read-only or kernel-provided path) is
// KindConflict too, with the agent's message (see agentError).
func (f Files) MakeDir(ctx context.Context, path, user string) (fi *domain.FileInfo, created bool, err error) {
	if user != "" {
		ctx = WithUser(ctx, user)
	}
	resp, err := f.c.fs.MakeDir(ctx, connect.NewRequest(&filesystem.MakeDirRequest{Path: path}))
	switch connect.CodeOf(err) {
	case connect.CodeAlreadyExists:
		fi, err := f.Stat(ctx, path, user)
		return fi, false, err
	case connect.CodeInvalidArgument:
		// The agent's only invalid arguments here are a non-directory at path or on
		// the way to it.
		var ce *connect.Error
		errors.As(err, &ce)
		return nil, false, domain.Errorf(domain.KindConflict, "cannot create directory %s: %s", path, ce.Message())
	}
	if err != nil {
		return nil, false, mapErr(err)
	}
	info := entryInfo(resp.Msg.GetEntry())
	return &info, true, nil
}

// Move renames from to to (to's parents are created) and describes to. What the
// filesystem does not allow (moving across filesystems or a mount point, replacing a
// directory that is not empty) is KindConflict, saying what to do instead.
func (f Files) Move(ctx context.Context, from, to, user string) (*domain.FileInfo, error) {
	if user != "" {
		ctx = WithUser(ctx, user)
	}
	resp, err := f.c.fs.Move(ctx, connect.NewRequest(&filesystem.MoveRequest{Source: from, Destination: to}))
	if err != nil {
		return nil, mapErr(err)
	}
	info := entryInfo(resp.Msg.GetEntry())
	return &info, nil
}

// Remove deletes path, recursively for a directory. The agent does not mind a missing
// path; this does: it is KindNotFound.
func (f Files) Remove(ctx context.Context, path, user string) error {
	if _, err := f.Stat(ctx, path, user); err != nil {
		return err
	}
	if user != "" {
		ctx = WithUser(ctx, user)
	}
	_, err := f.c.fs.Remove(ctx, connect.NewRequest(&filesystem.RemoveRequest{Path: path}))
	return mapErr(err)
}
