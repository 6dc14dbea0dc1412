package devices

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// BPF_DEVCG_DEV_* device types in bpf_cgroup_dev_ctx.access_type.
const (
	bpfDevBlock = 1
	bpfDevChar  = 2
)

// Program compiles a state into a cgroup device program. The context is
// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; },
// access_type = access<<16 | type. The program walks the exceptions in
// order and returns 1 (allow) or 0 (deny), exactly as State.Permits.
func Program(s State) asm.Instructions {
	const (
		rType   = asm.R2
		rAccess = asm.R3
		rMajor  = asm.R4
		rMinor  = asm.R5
		rTmp    = asm.R1
	)
	insns := asm.Instructions{
		asm.LoadMem(rType, asm.R1, 0, asm.Word),
		asm.Mov.Reg32(rAccess, rType),
		asm.RSh.Imm32(rAccess, 16),
		asm.And.Imm32(rType, 0xffff),
		asm.LoadMem(rMajor, asm.R1, 4, asm.Word),
		asm.LoadMem(rMinor, asm.R1, 8, asm.Word),
	}
	verdict := func(allow bool) asm.Instructions {
		v := int32(0)
		if allow {
			v = 1
		}
		return asm.Instructions{asm.Mov.Imm(asm.R0, v), asm.Return()}
	}
	label := func(i int) string { return fmt.Sprintf("ex%d", i) }
	// Block i checks exception i; a mismatch jumps to block i+1; the last
	// "block" is the default verdict.
	for i, e := range s.Exceptions {
		next := label(i + 1)
		t := int32(bpfDevChar)
		if e.Type == Block {
			t = bpfDevBlock
		}
		block := asm.Instructions{asm.JNE.Imm32(rType, t, next)}
		if e.Major != Wildcard {
			block = append(block, asm.JNE.Imm32(rMajor, int32(uint32(e.Major)), next))
		}
		if e.Minor != Wildcard {
			block = append(block, asm.JNE.Imm32(rMinor, int32(uint32(e.Minor)), next))
		}
		block = append(block, asm.Mov.Reg32(rTmp, rAccess))
		if s.DefaultAllow {
			// A deny exception: any overlap with the request denies.
			block = append(block, asm.And.Imm32(rTmp, int32(e.Access)), asm.JEq.Imm32(rTmp, 0, next))
			block = append(block, verdict(false)...)
		} else {
			// An allow exception must cover every requested access.
			block = append(block, asm.And.Imm32(rTmp, int32(^e.Access&RWM)), asm.JNE.Imm32(rTmp, 0, next))
			block = append(block, verdict(true)...)
		}
		block[0] = block[0].WithSymbol(label(i))
		insns = append(insns, block...)
	}
	tail := verdict(s.DefaultAllow)
	tail[0] = tail[0].WithSymbol(label(len(s.Exceptions)))
	return append(insns, tail...)
}

// flagAllowMulti is BPF_F_ALLOW_MULTI: several programs on one cgroup, all
// of which must allow (so a replacement can be attached before the old
// program is detached without a moment of "allow everything").
const flagAllowMulti = 2

// AttachV2 loads the program for s and attaches it to the cgroup v2
// directory dir, then detaches the device programs that were attached
// there before (a previous policy). With a default-allow state and no
// exceptions nothing is attached and old programs are detached.
func AttachV2(dir string, s State) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("device policy: open cgroup %s: %w", dir, err)
	}
	defer unix.Close(fd)
	old, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("device policy: query programs on %s: %w", dir, err)
	}
	if !s.DefaultAllow || len(s.Exceptions) > 0 {
		prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
			Name:         "berth_devices",
			Type:         ebpf.CGroupDevice,
			License:      "Apache-2.0",
			Instructions: Program(s),
		}, ebpf.ProgramOptions{})
		if err != nil {
			return fmt.Errorf("device policy: load BPF program: %w", err)
		}
		defer prog.Close()
		err = link.RawAttachProgram(link.RawAttachProgramOptions{
			Target: fd, Program: prog, Attach: ebpf.AttachCGroupDevice, Flags: flagAllowMulti,
		})
		if err != nil {
			return fmt.Errorf("device policy: attach BPF program to %s: %w", dir, err)
		}
	}
	var errs []error
	for _, p := range old.Programs {
		prog, err := ebpf.NewProgramFromID(p.ID)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			errs = append(errs, err)
			continue
		}
		err = link.RawDetachProgram(link.RawDetachProgramOptions{
			Target: fd, Program: prog, Attach: ebpf.AttachCGroupDevice,
		})
		prog.Close()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("device policy: detach the previous program from %s: %w", dir, err)
	}
	return nil
}
