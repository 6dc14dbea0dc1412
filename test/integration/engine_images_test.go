package integration

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestEngineImages: import (with changes), images, image inspect, history,
// tag, save, rmi (and its conflicts), load, through the docker CLI.
func TestEngineImages(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	tarPath := filepath.Join(e.dir, "saved.tar")
	id := strings.TrimSpace(e.docker("images", "-q", "busybox"))
	if len(id) != 12 {
		t.Fatalf("images -q: %q", id)
	}
	e.docker("tag", "busybox", "mybox:v1")
	if out := e.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); !strings.Contains(out, "mybox:v1 "+id) || !strings.Contains(out, "busybox:latest "+id) {
		t.Fatalf("images after tag:\n%s", out)
	}
	var insp []struct {
		ID       string `json:"Id"`
		RepoTags []string
		Os       string
		RootFS   struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(e.docker("image", "inspect", "mybox:v1")), &insp); err != nil || len(insp) != 1 ||
		!strings.HasPrefix(insp[0].ID, "sha256:"+id) || len(insp[0].RootFS.Layers) != 1 || insp[0].Os != "linux" {
		t.Fatalf("image inspect: %+v %v", insp, err)
	}
	if out := e.docker("history", "busybox"); !strings.Contains(out, "IMAGE") {
		t.Fatalf("history:\n%s", out)
	}
	e.docker("save", "-o", tarPath, "busybox", "mybox:v1")

	// An image in use by a container cannot be removed without -f.
	ctr := strings.TrimSpace(e.docker("create", "mybox:v1", "true"))
	if _, errs, code := e.dockerQuiet("rmi", id); code == 0 || !strings.Contains(errs, "conflict") {
		t.Fatalf("rmi of a used image: %d %s", code, errs)
	}
	e.docker("rm", ctr)
	out := e.docker("rmi", "mybox:v1", "busybox")
	if !strings.Contains(out, "Untagged: mybox:v1") || !strings.Contains(out, "Deleted: sha256:"+id) {
		t.Fatalf("rmi:\n%s", out)
	}
	if out := e.docker("load", "-i", tarPath); !strings.Contains(out, "Loaded image: busybox:latest") || !strings.Contains(out, "Loaded image: mybox:v1") {
		t.Fatalf("load:\n%s", out)
	}
	if out := e.docker("run", "--rm", "mybox:v1", "echo", "from a loaded image"); out != "from a loaded image\n" {
		t.Fatalf("run loaded: %q", out)
	}
	// import with changes: CMD and ENV become the image's config.
	e.docker("export", "-o", filepath.Join(e.dir, "fs.tar"), strings.TrimSpace(e.docker("create", "busybox", "true")))
	e.docker("import", "--change", `CMD ["sh", "-c", "echo $MSG"]`, "--change", "ENV MSG=imported", filepath.Join(e.dir, "fs.tar"), "imported:v1")
	if out := e.docker("run", "--rm", "imported:v1"); out != "imported\n" {
		t.Fatalf("run imported with changes: %q", out)
	}
	// A tarball that is no image is refused; the daemon keeps serving.
	if _, errs, code := e.dockerQuiet("load", "-i", filepath.Join(e.dir, "fs.tar")); code == 0 || !strings.Contains(errs, "manifest.json") {
		t.Fatalf("load of a rootfs tarball: %d %s", code, errs)
	}
	if _, errs, code := e.dockerQuiet("image", "inspect", "nosuch:image"); code != 1 || !strings.Contains(errs, "No such image") {
		t.Fatalf("inspect nosuch: %d %s", code, errs)
	}
}
