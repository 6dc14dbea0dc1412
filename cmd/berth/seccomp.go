package main

// `berth seccomp compile|dump|disasm|explain`: the talk's seccomp
// instruments, built on berth's compiler (package seccomp) and its
// filter inspection (package seccomp/explain).

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/proc"
	"github.com/berth-dev/berth/seccomp"
	"github.com/berth-dev/berth/seccomp/bpf"
	sexplain "github.com/berth-dev/berth/seccomp/explain"
	"github.com/berth-dev/berth/seccomp/profile"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

func init() {
	register(&command{name: "seccomp", summary: "Compile, dump, disassemble and explain seccomp filters", run: runSeccomp})
}

const seccompUsage = `Usage:  berth seccomp COMMAND [OPTIONS]

Compile seccomp profiles to BPF, read the filter of a running process, and
show what a filter does with each syscall.

Commands:
  compile PROFILE -o FILE   compile a Docker-format profile (or an OCI
                            config.json's linux.seccomp) to raw BPF, as
                            libseccomp's seccomp_export_bpf writes it
      --arch A              architecture to compile for (default: this machine's)
      --caps default|all|LIST  the container's capabilities (default: default)
      --kernel X.Y          kernel version for minKernel rules (default: running)
      --oci                 print the OCI linux.seccomp the profile becomes instead
  dump PID|CONTAINER [-o FILE]   read a process's filter (PTRACE_SECCOMP_GET_FILTER)
      --index N             which filter, 0 = the last installed (default 0)
  disasm FILE|PID|CONTAINER list a filter like scmp_bpf_disasm, annotated
      --arch A              byte order of FILE (default: this machine's)
  explain PID|CONTAINER|FILE [SYSCALL [ARG...]]
                            the action and instructions executed for one
                            syscall, or a table of every syscall
      --arch A              architecture of the syscall (default: this machine's)
      --profile PROFILE     compare the filter with what PROFILE compiles to,
                            for the process's bounding capabilities (or --caps)

  try SYSCALL [ARG...]      make one syscall (integer arguments) from this
                            process and print what the kernel answered, as
                            strace does: inside a container, what its
                            filter really does
  exec PROFILE CMD [ARG...]  run CMD under PROFILE's filter (sets
                            no_new_privs), like docker run --security-opt
                            seccomp=PROFILE does for a container
      --caps, --kernel      as for compile

PROFILE is a file, "-" for standard input, or "default" for Docker's
default profile.
`

func runSeccomp(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			fmt.Fprint(os.Stderr, seccompUsage)
			return 125
		}
		fmt.Print(seccompUsage)
		return 0
	}
	run := map[string]func([]string) (int, error){
		"compile": seccompCompile,
		"dump":    seccompDump,
		"disasm":  seccompDisasm,
		"explain": seccompExplain,
		"exec":    seccompExec,
		"try":     seccompTry,
	}[args[0]]
	if run == nil {
		fmt.Fprintf(os.Stderr, "berth seccomp: unknown command %q (want compile, dump, disasm or explain)\nSee 'berth seccomp --help'.\n", args[0])
		return 125
	}
	code, err := run(args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(seccompUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth seccomp %s: %v\n", args[0], err)
		if code == 0 {
			code = 125
		}
	}
	return code
}

// seccompFlags are the options of the seccomp commands.
type seccompFlags struct {
	arch, caps, kernel, out, profile string
	index                            int
	oci                              bool
}

func parseSeccompFlags(name string, args []string) (*seccompFlags, []string, error) {
	var f seccompFlags
	fs := flag.NewFlagSet("seccomp "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.arch, "arch", "", "")
	fs.StringVar(&f.caps, "caps", "", "")
	fs.StringVar(&f.kernel, "kernel", "", "")
	fs.StringVar(&f.out, "o", "", "")
	fs.StringVar(&f.out, "output", "", "")
	fs.StringVar(&f.profile, "profile", "", "")
	fs.IntVar(&f.index, "index", 0, "")
	fs.BoolVar(&f.oci, "oci", false, "")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if f.index < 0 {
		return nil, nil, fmt.Errorf("--index %d: want 0 or more", f.index)
	}
	return &f, pos, nil
}

func (f *seccompFlags) archOrNative() (*syscalls.Arch, error) {
	if f.arch == "" {
		if a := syscalls.Native(); a != nil {
			return a, nil
		}
		return nil, errors.New("berth has no syscall table for this machine: pass --arch")
	}
	return syscalls.Lookup(f.arch)
}

// capList turns --caps into capability names (default: Docker's).
func capList(s string) ([]string, error) {
	switch strings.ToLower(s) {
	case "", "default":
		return caps.DockerDefault, nil
	case "all":
		return caps.All(caps.MaxKnown).Names(), nil
	case "none":
		return nil, nil
	}
	var out []string
	for _, c := range strings.Split(s, ",") {
		n, err := caps.Number(c)
		if err != nil {
			return nil, fmt.Errorf("--caps: %w", err)
		}
		out = append(out, caps.Name(n))
	}
	return out, nil
}

// loadProfile reads PROFILE and resolves it to an OCI configuration.
func loadProfile(path string, env profile.Env) (*specs.LinuxSeccomp, error) {
	var data []byte
	var err error
	switch path {
	case "default":
		data = profile.DefaultJSON()
	case "-":
		data, err = io.ReadAll(io.LimitReader(os.Stdin, 16<<20))
	default:
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	// An OCI bundle's config.json: its linux.seccomp as it is.
	var bundle struct {
		OCIVersion string `json:"ociVersion"`
		Linux      *struct {
			Seccomp *specs.LinuxSeccomp `json:"seccomp"`
		} `json:"linux"`
	}
	if json.Unmarshal(data, &bundle) == nil && bundle.OCIVersion != "" {
		if bundle.Linux == nil || bundle.Linux.Seccomp == nil {
			return nil, fmt.Errorf("%s: the OCI configuration has no linux.seccomp", path)
		}
		return bundle.Linux.Seccomp, nil
	}
	cfg, err := seccomp.FromDockerJSONFor(data, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if cfg == nil {
		return nil, fmt.Errorf("%s: the profile is empty, which Docker reads as no filter (unconfined)", path)
	}
	return cfg, nil
}

func (f *seccompFlags) env(arch *syscalls.Arch, capNames []string) (profile.Env, error) {
	env := profile.Env{Arch: arch, Caps: capNames}
	if f.kernel != "" {
		k, err := profile.ParseKernel(f.kernel)
		if err != nil {
			return env, fmt.Errorf("--kernel: %w", err)
		}
		env.Kernel = k
		return env, nil
	}
	k, err := seccomp.KernelVersion()
	env.Kernel = k
	return env, err
}

func seccompCompile(args []string) (int, error) {
	f, pos, err := parseSeccompFlags("compile", args)
	if err != nil {
		return 125, err
	}
	if len(pos) != 1 {
		return 125, errors.New("want exactly one PROFILE\nSee 'berth seccomp --help'.")
	}
	arch, err := f.archOrNative()
	if err != nil {
		return 125, err
	}
	capNames, err := capList(f.caps)
	if err != nil {
		return 125, err
	}
	env, err := f.env(arch, capNames)
	if err != nil {
		return 125, err
	}
	cfg, err := loadProfile(pos[0], env)
	if err != nil {
		return 125, err
	}
	if f.oci {
		b, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			return 125, err
		}
		fmt.Println(string(b))
		return 0, nil
	}
	prog, err := seccomp.CompileFor(cfg, arch)
	if err != nil {
		return 125, err
	}
	for _, w := range prog.Warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	if err := writeRaw(f.out, prog.Bytes()); err != nil {
		return 125, err
	}
	var names []string
	for _, a := range cfg.Architectures {
		if x, err := syscalls.Lookup(string(a)); err == nil && x != arch {
			names = append(names, x.Name)
		}
	}
	fmt.Fprintf(os.Stderr, "Compiled %d BPF instructions for %s\n", len(prog.Instructions), strings.Join(append([]string{arch.Name}, names...), ", "))
	return 0, nil
}

// writeRaw writes a raw program to path, or to standard output when it is
// not a terminal.
func writeRaw(path string, raw []byte) error {
	if path == "" || path == "-" {
		if _, err := unix.IoctlGetTermios(int(os.Stdout.Fd()), unix.TCGETS); err == nil {
			return errors.New("refusing to write binary BPF to a terminal: give -o FILE (or use 'berth seccomp disasm')")
		}
		_, err := os.Stdout.Write(raw)
		return err
	}
	return os.WriteFile(path, raw, 0o644)
}

// filterOf dumps filter index of the process named by arg.
func filterOf(arg string, index int) ([]bpf.Instruction, int, int, error) {
	t, err := newResolver("", "").resolve(arg)
	if err != nil {
		return nil, 0, 0, err
	}
	filters, err := sexplain.Dump(t.PID)
	if err != nil {
		return nil, 0, 0, err
	}
	if len(filters) == 0 {
		return nil, 0, 0, fmt.Errorf("process %d has no seccomp filter", t.PID)
	}
	if index >= len(filters) {
		return nil, 0, 0, fmt.Errorf("process %d has %d filters; --index %d does not exist", t.PID, len(filters), index)
	}
	return filters[index], len(filters), t.PID, nil
}

func seccompDump(args []string) (int, error) {
	f, pos, err := parseSeccompFlags("dump", args)
	if err != nil {
		return 125, err
	}
	if len(pos) != 1 {
		return 125, errors.New("want exactly one PID or CONTAINER\nSee 'berth seccomp --help'.")
	}
	prog, n, pid, err := filterOf(pos[0], f.index)
	if err != nil {
		return 125, err
	}
	if err := writeRaw(f.out, bpf.Encode(prog, binary.NativeEndian)); err != nil {
		return 125, err
	}
	msg := os.Stdout
	if f.out == "" || f.out == "-" {
		msg = os.Stderr
	}
	if n > 1 {
		fmt.Fprintf(msg, "Process %d has %d filters; this is filter %d (0 is the last installed)\n", pid, n, f.index)
	}
	fmt.Fprintf(msg, "Dumped %d BPF instructions\n", len(prog))
	return 0, nil
}

// programOf reads a filter from FILE, or dumps it from PID|CONTAINER.
func programOf(arg string, f *seccompFlags) ([]bpf.Instruction, error) {
	if fi, err := os.Stat(arg); err == nil && fi.Mode().IsRegular() {
		raw, err := os.ReadFile(arg)
		if err != nil {
			return nil, err
		}
		order := binary.ByteOrder(binary.NativeEndian)
		if f.arch != "" {
			a, err := syscalls.Lookup(f.arch)
			if err != nil {
				return nil, err
			}
			order = seccomp.ByteOrder(a.SCMP)
		}
		prog, err := bpf.Decode(raw, order)
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid seccomp filter: %w", arg, err)
		}
		if err := bpf.Validate(prog); err != nil {
			return nil, fmt.Errorf("%s is not a valid seccomp filter: %w", arg, err)
		}
		return prog, nil
	}
	if strings.Contains(arg, "/") {
		return nil, fmt.Errorf("%s: no such file", arg)
	}
	prog, _, _, err := filterOf(arg, f.index)
	return prog, err
}

func seccompDisasm(args []string) (int, error) {
	f, pos, err := parseSeccompFlags("disasm", args)
	if err != nil {
		return 125, err
	}
	if len(pos) != 1 {
		return 125, errors.New("want exactly one FILE, PID or CONTAINER\nSee 'berth seccomp --help'.")
	}
	prog, err := programOf(pos[0], f)
	if err != nil {
		return 125, err
	}
	notes := sexplain.Annotate(prog)
	return 0, bpf.Disasm(os.Stdout, prog, func(pc int) string { return notes[pc] })
}

// parseArg parses a syscall argument: decimal, 0x hex, 0 octal, or
// negative (two's complement, as the kernel sees -1).
func parseArg(s string) (uint64, error) {
	if v, err := strconv.ParseUint(s, 0, 64); err == nil {
		return v, nil
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("argument %q is not a number", s)
	}
	return uint64(v), nil
}

func seccompExplain(args []string) (int, error) {
	f, pos, err := parseSeccompFlags("explain", args)
	if err != nil {
		return 125, err
	}
	if len(pos) < 1 {
		return 125, errors.New("want a PID, CONTAINER or FILE\nSee 'berth seccomp --help'.")
	}
	arch, err := f.archOrNative()
	if err != nil {
		return 125, err
	}
	prog, err := programOf(pos[0], f)
	if err != nil {
		return 125, err
	}
	if f.profile != "" {
		if len(pos) > 1 {
			return 125, errors.New("--profile compares every syscall; do not name one")
		}
		return explainDiff(pos[0], prog, arch, f)
	}
	if len(pos) == 1 {
		return explainTable(prog, arch)
	}
	nr, ok := arch.Nr(pos[1])
	if !ok {
		v, err := strconv.ParseUint(pos[1], 0, 32)
		if err != nil {
			return 125, fmt.Errorf("unknown syscall %q on %s", pos[1], arch.Name)
		}
		nr = uint32(v)
	}
	if len(pos) > 8 {
		return 125, errors.New("a syscall has at most 6 arguments")
	}
	var sargs [6]uint64
	for i, s := range pos[2:] {
		if sargs[i], err = parseArg(s); err != nil {
			return 125, err
		}
	}
	v, err := sexplain.Trace(prog, arch, nr, sargs)
	if err != nil {
		return 125, err
	}
	name := arch.NameOf(nr)
	if name == "" {
		name = "syscall"
	}
	fmt.Printf("%s (%d) on %s, args %s: %s after %d instructions\n", name, nr, arch.Name, fmtArgs(sargs, len(pos)-2), bpf.ActionString(v.Action), len(v.Steps))
	for _, s := range v.Steps {
		line := fmt.Sprintf(" %.4d: %-3s %s", s.PC, bpf.Mnemonic(s.Ins.Op), bpf.Operands(s.Ins, s.PC))
		if s.Note != "" {
			line = fmt.Sprintf("%-48s # %s", line, s.Note)
		}
		fmt.Println(line)
	}
	return 0, nil
}

func fmtArgs(a [6]uint64, n int) string {
	if n == 0 {
		return "all 0"
	}
	var parts []string
	for i := 0; i < n; i++ {
		parts = append(parts, fmt.Sprintf("%#x", a[i]))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func explainTable(prog []bpf.Instruction, arch *syscalls.Arch) (int, error) {
	rows, err := sexplain.Table(prog, arch)
	if err != nil {
		return 125, err
	}
	fmt.Printf("%-24s %10s  %-12s %5s  %s\n", "SYSCALL", "NR", "ACTION", "STEPS", "NOTES")
	for _, r := range rows {
		var notes []string
		if r.ArgDependent {
			var acts []string
			for _, a := range r.Actions {
				acts = append(acts, bpf.ActionString(a))
			}
			notes = append(notes, "depends on arguments: "+strings.Join(acts, ", "))
		}
		if r.ConstAllow {
			notes = append(notes, "kernel action cache")
		}
		fmt.Printf("%-24s %10d  %-12s %5d  %s\n", r.Name, r.Nr, bpf.ActionString(r.Action), r.Steps, strings.Join(notes, "; "))
	}
	st := sexplain.Summarise(rows)
	fmt.Printf("\n%d instructions. %s: %d syscalls allowed (instructions executed: median %d, max %d), %d not (median %d, max %d); %d of %d allowed outright are in the kernel's action cache\n",
		len(prog), arch.Name, st.Allowed, st.AllowedMedian, st.AllowedMax, st.Denied, st.DeniedMedian, st.DeniedMax, st.ConstAllow, st.UnconditionalAllow)
	return 0, nil
}

func explainDiff(target string, live []bpf.Instruction, arch *syscalls.Arch, f *seccompFlags) (int, error) {
	capNames, err := capList(f.caps)
	if err != nil {
		return 125, err
	}
	capsFrom := "Docker's default capabilities"
	if f.caps != "" {
		capsFrom = "--caps " + f.caps
	} else if t, err := newResolver("", "").resolve(target); err == nil {
		if _, statErr := os.Stat(target); statErr != nil {
			st, err := proc.ReadStatus(t.PID)
			if err != nil {
				return 125, err
			}
			capNames = st.CapBnd.Names()
			capsFrom = fmt.Sprintf("the bounding set of process %d", t.PID)
		}
	}
	env, err := f.env(arch, capNames)
	if err != nil {
		return 125, err
	}
	cfg, err := loadProfile(f.profile, env)
	if err != nil {
		return 125, err
	}
	want, err := seccomp.CompileFor(cfg, arch)
	if err != nil {
		return 125, err
	}
	arches := []*syscalls.Arch{arch}
	for _, a := range cfg.Architectures {
		if x, err := syscalls.Lookup(string(a)); err == nil && x != arch {
			arches = append(arches, x)
		}
	}
	diffs, err := sexplain.Diff(live, want.Instructions, arches, 200)
	if err != nil {
		return 125, err
	}
	if len(diffs) == 0 {
		fmt.Printf("No difference: the filter does for every syscall what %s says for %s.\n", f.profile, capsFrom)
		return 0, nil
	}
	fmt.Printf("%d differences between the filter (first) and %s for %s (second):\n", len(diffs), f.profile, capsFrom)
	for _, d := range diffs {
		fmt.Println("  " + d.String())
	}
	return 1, nil
}

func seccompExec(args []string) (int, error) {
	// Options come before PROFILE; everything after it is the command.
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-" {
		if args[i] == "--" {
			break
		}
		if !strings.Contains(args[i], "=") {
			i++
		}
		i++
	}
	f, pos, err := parseSeccompFlags("exec", args[:min(i, len(args))])
	if err != nil {
		return 125, err
	}
	rest := args[min(i, len(args)):]
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	if len(pos) != 0 || len(rest) < 2 {
		return 125, errors.New("want PROFILE and a command\nSee 'berth seccomp --help'.")
	}
	arch, err := f.archOrNative()
	if err != nil {
		return 125, err
	}
	capNames, err := capList(f.caps)
	if err != nil {
		return 125, err
	}
	env, err := f.env(arch, capNames)
	if err != nil {
		return 125, err
	}
	cfg, err := loadProfile(rest[0], env)
	if err != nil {
		return 125, err
	}
	prog, err := seccomp.CompileFor(cfg, arch)
	if err != nil {
		return 125, err
	}
	if prog.Notify {
		return 125, errors.New("profiles with SCMP_ACT_NOTIFY need an agent; use a container runtime")
	}
	path, err := lookPath(rest[1])
	if err != nil {
		return 127, err
	}
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return 125, fmt.Errorf("set no_new_privs: %w", err)
	}
	if _, err := prog.Load(); err != nil {
		return 125, err
	}
	err = unix.Exec(path, rest[1:], os.Environ())
	return 126, fmt.Errorf("exec %s: %w", rest[1], err)
}

// lookPath finds a command as a shell would.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range strings.Split(os.Getenv("PATH"), ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: command not found", name)
}

// tryRefused are syscalls `try` will not make: they would end, fork,
// replace or signal processes, or reboot the machine.
var tryRefused = map[string]bool{
	"exit": true, "exit_group": true, "fork": true, "vfork": true, "clone": true,
	"execve": true, "execveat": true, "kill": true, "tkill": true, "tgkill": true,
	"pidfd_send_signal": true, "rt_sigqueueinfo": true, "rt_tgsigqueueinfo": true,
	"reboot": true, "rt_sigreturn": true, "kexec_load": true, "kexec_file_load": true,
}

func seccompTry(args []string) (int, error) {
	// Arguments may be negative numbers: only a leading --arch is an option.
	n := 0
	for n < len(args) && (args[n] == "--arch" || strings.HasPrefix(args[n], "--arch=") || args[n] == "-h" || args[n] == "--help") {
		if args[n] == "--arch" {
			n++
		}
		n++
	}
	f, _, err := parseSeccompFlags("try", args[:min(n, len(args))])
	if err != nil {
		return 125, err
	}
	pos := args[min(n, len(args)):]
	if len(pos) < 1 || len(pos) > 7 {
		return 125, errors.New("want SYSCALL and at most 6 arguments\nSee 'berth seccomp --help'.")
	}
	arch := syscalls.Native()
	if arch == nil || (f.arch != "" && f.arch != arch.Name) {
		return 125, errors.New("try makes syscalls of this machine's architecture only")
	}
	nr, ok := arch.Nr(pos[0])
	name := pos[0]
	if !ok {
		v, err := strconv.ParseUint(pos[0], 0, 32)
		if err != nil {
			return 125, fmt.Errorf("unknown syscall %q on %s", pos[0], arch.Name)
		}
		nr, name = uint32(v), arch.NameOf(uint32(v))
		if name == "" {
			name = "syscall_" + pos[0]
		}
	}
	if tryRefused[arch.NameOf(nr)] {
		return 125, fmt.Errorf("refusing to make %s: it would end, fork, replace or signal processes", arch.NameOf(nr))
	}
	var a [6]uint64
	for i, s := range pos[1:] {
		if a[i], err = parseArg(s); err != nil {
			return 125, err
		}
	}
	if arch.NameOf(nr) == "clone3" && a[0] != 0 {
		return 125, errors.New("refusing clone3 with a non-NULL argument: it could create a process")
	}
	runtime.LockOSThread()
	r, _, errno := unix.RawSyscall6(uintptr(nr), uintptr(a[0]), uintptr(a[1]), uintptr(a[2]), uintptr(a[3]), uintptr(a[4]), uintptr(a[5]))
	runtime.UnlockOSThread()
	var shown []string
	for _, s := range pos[1:] {
		shown = append(shown, s)
	}
	if errno != 0 {
		fmt.Printf("%s(%s) = -1 %s (%s)\n", name, strings.Join(shown, ", "), errnoName(errno), errno.Error())
	} else {
		fmt.Printf("%s(%s) = %d\n", name, strings.Join(shown, ", "), int64(r))
	}
	return 0, nil
}

// errnoName is the symbolic name of an errno ("EPERM").
func errnoName(e unix.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}
