package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"regexp"
)

// validName is Docker's container name rule.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

var (
	adjectives = []string{"agile", "bold", "brave", "calm", "clever", "crisp", "eager", "fair", "gentle",
		"happy", "keen", "kind", "lucid", "merry", "nimble", "noble", "plucky", "quiet", "rapid", "serene",
		"sharp", "steady", "swift", "tidy", "upbeat", "vivid", "wise", "witty", "zealous", "jolly"}
	people = []string{"kerrisk", "torvalds", "ritchie", "thompson", "kernighan", "mccarthy", "hopper",
		"lovelace", "turing", "hamilton", "knuth", "liskov", "lamport", "dijkstra", "backus", "allen",
		"perlman", "stallman", "tanenbaum", "wozniak", "cerf", "kahn", "pike", "cox", "hoare", "wirth",
		"shannon", "noether", "curie", "babbage"}
)

func randInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0
	}
	return int(v.Int64())
}

// generateName makes a Docker-style random name ("swift_kerrisk"); retry
// adds a digit, as Docker does on collision.
func generateName(retry int) string {
	n := fmt.Sprintf("%s_%s", adjectives[randInt(len(adjectives))], people[randInt(len(people))])
	if retry > 0 {
		n += fmt.Sprint(randInt(10))
	}
	return n
}

// newID makes a 64-hex-digit id.
func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}
