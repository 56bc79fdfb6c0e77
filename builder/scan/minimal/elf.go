package minimal

import (
	"debug/elf"
	"io"
	"strings"
)

// ReadELF reads what the loader needs from an ELF file; nil if r holds no
// ELF file it can parse.
func ReadELF(r io.ReaderAt) *ELF {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil
	}
	defer f.Close()
	out := &ELF{Type: ELFOther}
	switch f.Type {
	case elf.ET_EXEC:
		out.Type = ELFExec
	case elf.ET_DYN:
		out.Type = ELFShared
	default:
		return out
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, min(p.Filesz, 4096))
			if _, err := p.ReadAt(b, 0); err == nil {
				out.Interp = strings.TrimRight(string(b), "\x00")
			}
			if out.Type == ELFShared {
				out.Type = ELFExec // a position-independent executable
			}
		}
	}
	out.Needed, _ = f.DynString(elf.DT_NEEDED)
	rp, _ := f.DynString(elf.DT_RUNPATH)
	if len(rp) == 0 {
		rp, _ = f.DynString(elf.DT_RPATH)
	}
	for _, s := range rp {
		out.RunPath = append(out.RunPath, strings.Split(s, ":")...)
	}
	return out
}

// Shebang returns the interpreter a script's first line names, or "".
func Shebang(head []byte) string {
	if len(head) < 3 || head[0] != '#' || head[1] != '!' {
		return ""
	}
	line := string(head[2:])
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	fields := strings.Fields(line)
	if len(fields) == 0 || !strings.HasPrefix(fields[0], "/") {
		return ""
	}
	return fields[0]
}
