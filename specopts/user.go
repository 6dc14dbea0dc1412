package specopts

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// User is a resolved process identity.
type User struct {
	UID, GID       uint32
	AdditionalGids []uint32
	Home           string
}

// ResolveUser resolves Docker's --user value ("", "name", "uid",
// "name:group", "uid:gid") against the container's /etc/passwd and
// /etc/group (read inside rootfs, never outside it), and adds the
// supplementary groups the user is a member of, as dockerd does: root in
// busybox's wheel group gets groups=10(wheel). groupAdd are extra groups
// (names or numbers) from --group-add.
func ResolveUser(rootfs, spec string, groupAdd []string) (User, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	passwd := readDB(rootfs, "/etc/passwd")
	groups := readDB(rootfs, "/etc/group")

	u := User{Home: "/"}
	name := ""
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		u.UID = uint32(n)
		for _, e := range passwd {
			if len(e) >= 6 && e[2] == userPart {
				name, u.GID, u.Home = e[0], atou(e[3]), e[5]
				break
			}
		}
	} else {
		found := false
		for _, e := range passwd {
			if len(e) >= 6 && e[0] == userPart {
				name, u.UID, u.GID, u.Home, found = e[0], atou(e[2]), atou(e[3]), e[5], true
				break
			}
		}
		if !found {
			return User{}, fmt.Errorf("unable to find user %s: no matching entries in passwd file", userPart)
		}
	}
	if hasGroup && groupPart != "" {
		g, err := lookupGroup(groups, groupPart)
		if err != nil {
			return User{}, err
		}
		u.GID = g
	}
	seen := map[uint32]bool{}
	if name != "" && !hasGroup {
		for _, e := range groups {
			if len(e) < 4 {
				continue
			}
			for _, m := range strings.Split(e[3], ",") {
				if m == name {
					if g := atou(e[2]); !seen[g] {
						seen[g] = true
						u.AdditionalGids = append(u.AdditionalGids, g)
					}
				}
			}
		}
	}
	for _, ga := range groupAdd {
		g, err := lookupGroup(groups, ga)
		if err != nil {
			return User{}, err
		}
		if !seen[g] {
			seen[g] = true
			u.AdditionalGids = append(u.AdditionalGids, g)
		}
	}
	return u, nil
}

func lookupGroup(groups [][]string, g string) (uint32, error) {
	if n, err := strconv.ParseUint(g, 10, 32); err == nil {
		return uint32(n), nil
	}
	for _, e := range groups {
		if len(e) >= 3 && e[0] == g {
			return atou(e[2]), nil
		}
	}
	return 0, fmt.Errorf("unable to find group %s: no matching entries in group file", g)
}

func atou(s string) uint32 {
	n, _ := strconv.ParseUint(s, 10, 32)
	return uint32(n)
}

// readDB reads a colon-separated database inside rootfs; a missing or
// unreadable file is empty (the image may have none). Reads are bounded.
func readDB(rootfs, path string) [][]string {
	if rootfs == "" {
		return nil
	}
	p, err := securejoin.SecureJoin(rootfs, path)
	if err != nil {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(io.LimitReader(f, 4<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}
