package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"testing"
)

func oneFileTar(t *testing.T, body string) *bytes.Reader {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	tw.Close()
	return bytes.NewReader(b.Bytes())
}

// TestProofMovedTagLeavesImageDangling: as in dockerd, an image whose
// last tag moves to another image (a new import or a tag under the same
// name) stays in the store untagged, dangling, until image prune; an
// image that keeps another name is not made dangling.
func TestProofMovedTagLeavesImageDangling(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	imp := func(body, ref string) *Image {
		img, err := s.Import(oneFileTar(t, body), ref, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	old := imp("old\n", "berth-test/moved:v1")
	cur := imp("new\n", "berth-test/moved:v1")
	retagged := imp("retagged\n", "berth-test/other:v1")
	twoNames := imp("two names\n", "berth-test/two:a")
	if err := s.Tag(twoNames.ID.String(), "berth-test/two:b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(cur.ID.String(), "berth-test/other:v1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(cur.ID.String(), "berth-test/two:a"); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, img := range list {
		tags[img.ID.String()] = fmt.Sprint(img.RepoTags)
	}
	want := map[string]string{
		old.ID.String():      "[]",
		retagged.ID.String(): "[]",
		cur.ID.String():      "[berth-test/moved:v1 berth-test/other:v1 berth-test/two:a]",
		twoNames.ID.String(): "[berth-test/two:b]",
	}
	if fmt.Sprint(tags) != fmt.Sprint(want) {
		t.Fatalf("images after tags moved:\n got %v\nwant %v", tags, want)
	}
	resp, _, err := s.Prune(PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deleted := map[string]bool{}
	for _, r := range resp {
		deleted[r.Deleted] = true
	}
	if !deleted[old.ID.String()] || !deleted[retagged.ID.String()] || deleted[cur.ID.String()] || deleted[twoNames.ID.String()] {
		t.Errorf("prune deleted %v, want the two dangling images only", resp)
	}
	if list, _ := s.List(); len(list) != 2 {
		t.Errorf("%d images after prune, want 2", len(list))
	}
}
