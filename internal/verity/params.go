// Package verity writes dm-verity hash trees in the format of veritysetup
// (format version 1, hash type 1: the salt is hashed before each block) and
// describes them to the kernel.
//
// A bulkhead root keeps data and tree in one device: the data blocks, then
// the superblock in the next block, then the tree, top level first. The
// kernel learns where everything is from one command-line parameter,
// bulkhead.verity=DATA_BLOCKS:HASH_START:SALT:ROOT_HASH (see Params).
package verity

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// BlockSize is the data and hash block size bulkhead uses.
const BlockSize = 4096

// Algorithm is the hash bulkhead uses.
const Algorithm = "sha256"

// CmdlineKey is the kernel command-line parameter carrying Params.
const CmdlineKey = "bulkhead.verity"

// Params are what the kernel needs to check a root: the number of data
// blocks, the block (counted from the start of the hash device) where the
// tree begins, just after the superblock, the salt and the root hash.
type Params struct {
	DataBlocks uint64
	HashStart  uint64
	Salt       []byte
	RootHash   []byte
}

// String is the command-line value: DATA_BLOCKS:HASH_START:SALT:ROOT_HASH,
// hex for salt and root hash.
func (p Params) String() string {
	return fmt.Sprintf("%d:%d:%s:%s", p.DataBlocks, p.HashStart, hex.EncodeToString(p.Salt), hex.EncodeToString(p.RootHash))
}

// Cmdline is the kernel command-line parameter, bulkhead.verity=….
func (p Params) Cmdline() string { return CmdlineKey + "=" + p.String() }

// ParseParams reads the value written by String.
func ParseParams(s string) (Params, error) {
	f := strings.Split(s, ":")
	if len(f) != 4 {
		return Params{}, fmt.Errorf("parsing verity parameters %q: want DATA_BLOCKS:HASH_START:SALT:ROOT_HASH", s)
	}
	var p Params
	var err error
	if p.DataBlocks, err = strconv.ParseUint(f[0], 10, 64); err != nil || p.DataBlocks == 0 {
		return Params{}, fmt.Errorf("parsing verity parameters: bad data block count %q", f[0])
	}
	if p.HashStart, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return Params{}, fmt.Errorf("parsing verity parameters: bad hash start %q", f[1])
	}
	if p.Salt, err = hex.DecodeString(f[2]); err != nil || len(p.Salt) > 256 {
		return Params{}, fmt.Errorf("parsing verity parameters: bad salt %q", f[2])
	}
	if p.RootHash, err = hex.DecodeString(f[3]); err != nil || len(p.RootHash) != 32 {
		return Params{}, fmt.Errorf("parsing verity parameters: bad root hash %q", f[3])
	}
	return p, nil
}

// FromCmdline finds bulkhead.verity= in a kernel command line. ok is false
// when the parameter is absent.
func FromCmdline(cmdline string) (p Params, ok bool, err error) {
	for _, f := range strings.Fields(cmdline) {
		if v, found := strings.CutPrefix(f, CmdlineKey+"="); found {
			p, err = ParseParams(v)
			return p, true, err
		}
	}
	return Params{}, false, nil
}

// Sectors is the size of the verified device in 512-byte sectors.
func (p Params) Sectors() uint64 { return p.DataBlocks * (BlockSize / 512) }

// Table is the device-mapper verity target's parameter string for data and
// hash devices (paths or MAJOR:MINOR), followed by optional arguments such
// as "restart_on_corruption". The target covers sectors 0..Sectors().
func (p Params) Table(dataDev, hashDev string, opts ...string) (string, error) {
	if p.DataBlocks == 0 || len(p.RootHash) == 0 {
		return "", errors.New("verity table: empty parameters")
	}
	salt := "-"
	if len(p.Salt) > 0 {
		salt = hex.EncodeToString(p.Salt)
	}
	t := fmt.Sprintf("1 %s %s %d %d %d %d %s %s %s", dataDev, hashDev, BlockSize, BlockSize,
		p.DataBlocks, p.HashStart, Algorithm, hex.EncodeToString(p.RootHash), salt)
	if len(opts) > 0 {
		t += fmt.Sprintf(" %d %s", len(opts), strings.Join(opts, " "))
	}
	return t, nil
}
