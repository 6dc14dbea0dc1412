package registry

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/internal/testregistry"
)

// A busybox image built from busybox-static goes to a real registry and
// comes back into a fresh store whole: same manifest digest and image ID,
// a root filesystem that runs, and a second push under a new name that
// keeps the digest.
func TestPushPullRoundTrip(t *testing.T) {
	src := newStore(t)
	reg := testregistry.StartT(t, testregistry.Options{})
	ref := reg.Host + "/berth-test/busybox:v1"
	orig := importBusybox(t, src, ref)

	var pushed collect
	res, err := Push(ctxT(t), src, ref, PushOptions{}, pushed.fn)
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != orig.ManifestDescriptor.Digest || res.Tag != "v1" {
		t.Fatalf("push result %+v, want the stored manifest %s", res, orig.ManifestDescriptor.Digest)
	}
	for _, want := range []string{"The push refers to repository [" + reg.Host + "/berth-test/busybox]", "Pushed",
		"v1: digest: " + res.Digest.String() + " size: "} {
		found := false
		for _, s := range pushed.statuses() {
			if strings.Contains(s, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("push stream lacks %q: %q", want, pushed.statuses())
		}
	}
	again, err := src.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	if want := reg.Host + "/berth-test/busybox@" + res.Digest.String(); len(again.RepoDigests) != 1 || again.RepoDigests[0] != want {
		t.Errorf("RepoDigests after push = %q, want [%s]", again.RepoDigests, want)
	}

	dst := newStore(t)
	var pulled collect
	img, err := Pull(ctxT(t), dst, ref, PullOptions{}, pulled.fn)
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != orig.ID || img.ManifestDescriptor.Digest != orig.ManifestDescriptor.Digest {
		t.Fatalf("pulled image %s (manifest %s), pushed %s (manifest %s)", img.ID, img.ManifestDescriptor.Digest, orig.ID, orig.ManifestDescriptor.Digest)
	}
	layer := shortID(orig.Manifest.Layers[0].Digest.String())
	wantStream := []string{"v1: Pulling from berth-test/busybox", layer + ": Pulling fs layer", layer + ": Verifying Checksum",
		layer + ": Download complete", layer + ": Pull complete", "Digest: " + res.Digest.String(),
		"Status: Downloaded newer image for " + ref}
	got := pulled.statuses()
	var order []string
	for _, s := range got {
		if !strings.HasSuffix(s, ": Downloading") && !strings.HasSuffix(s, ": Extracting") {
			order = append(order, s)
		}
	}
	if strings.Join(order, "\n") != strings.Join(wantStream, "\n") {
		t.Errorf("pull stream:\n%s\nwant:\n%s", strings.Join(order, "\n"), strings.Join(wantStream, "\n"))
	}
	if out := runIn(t, prepare(t, dst, img), "/bin/busybox", "echo", "hello from the pulled image"); out != "hello from the pulled image\n" {
		t.Errorf("pulled busybox says %q", out)
	}
	if len(img.RepoTags) != 1 || img.RepoTags[0] != ref {
		t.Errorf("RepoTags = %q", img.RepoTags)
	}

	// Pulling again downloads nothing and says so.
	var second collect
	if _, err := Pull(ctxT(t), dst, ref, PullOptions{}, second.fn); err != nil {
		t.Fatal(err)
	}
	// As dockerd: no line per layer for an image it has.
	if want := []string{"v1: Pulling from berth-test/busybox", "Digest: " + res.Digest.String(), "Status: Image is up to date for " + ref}; strings.Join(second.statuses(), "\n") != strings.Join(want, "\n") {
		t.Errorf("second pull stream: %q, want %q", second.statuses(), want)
	}

	// By digest, into yet another store.
	third := newStore(t)
	byDigest := reg.Host + "/berth-test/busybox@" + res.Digest.String()
	img3, err := Pull(ctxT(t), third, byDigest, PullOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if img3.ID != orig.ID || len(img3.RepoTags) != 0 || len(img3.RepoDigests) != 1 || img3.RepoDigests[0] != byDigest {
		t.Errorf("pull by digest: ID %s tags %q digests %q", img3.ID, img3.RepoTags, img3.RepoDigests)
	}

	// Push the pulled image under a new name: same digest.
	if err := dst.Tag(ref, reg.Host+"/berth-test/renamed:v2"); err != nil {
		t.Fatal(err)
	}
	var re collect
	res2, err := Push(ctxT(t), dst, reg.Host+"/berth-test/renamed:v2", PushOptions{}, re.fn)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Digest != res.Digest {
		t.Errorf("pushed under a new name: digest %s, first push %s", res2.Digest, res.Digest)
	}
	// The layer was mounted from the repository it came from, not sent.
	if !re.has("Mounted from berth-test/busybox") {
		t.Errorf("push under a new name: %q", re.statuses())
	}

	// rmi of the pulled image's tag removes its digest name too, the image
	// and its blobs, as dockerd does.
	resp, err := third.Delete(byDigest, false, true)
	if err != nil || len(resp) < 2 || resp[0].Untagged == "" || resp[1].Deleted != img3.ID.String() {
		t.Errorf("rmi %s: %+v %v", byDigest, resp, err)
	}
	if blobs, _ := os.ReadDir(filepath.Join(third.Root(), "blobs", "sha256")); len(blobs) != 0 {
		t.Errorf("%d blobs left after rmi", len(blobs))
	}

	// Unknown tags and repositories are "not found".
	_, err = Pull(ctxT(t), newStore(t), reg.Host+"/berth-test/busybox:nope", PullOptions{}, nil)
	if !errors.Is(err, image.ErrNotFound) || err.Error() != "manifest for "+reg.Host+"/berth-test/busybox:nope not found: manifest unknown: manifest unknown" {
		t.Errorf("pull of a missing tag: %v", err)
	}
	if _, err := dst.Get(reg.Host + "/berth-test/busybox:nope"); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("a failed pull named an image: %v", err)
	}
}
