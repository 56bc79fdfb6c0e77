package rootimg

import "syscall"

// sysOf is the metadata erofs.Writer.CopyFrom reads from FileInfo.Sys on
// Linux: owner, mtime, link count and device number.
func sysOf(n *node) any {
	st := &syscall.Stat_t{Uid: n.uid, Gid: n.gid}
	set(&st.Nlink, n.nlink) // uint32 or uint64, by architecture
	set(&st.Rdev, n.rdev)
	set(&st.Mtim.Sec, n.mtime)
	return st
}

func set[T, V uint32 | uint64 | int32 | int64](dst *T, v V) { *dst = T(v) }
