package archive

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// benchLayer is like one layer of issue 7's benchmark image: a 16 MiB
// incompressible file and a few hundred small files.
func benchLayer(b *testing.B) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	big := make([]byte, 16<<20)
	rand.Read(big)
	tw.WriteHeader(&tar.Header{Name: "data/big.bin", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(big))})
	tw.Write(big)
	small := make([]byte, 4096)
	for i := range 300 {
		rand.Read(small)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/d%d/f%d", i%10, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(small))})
		tw.Write(small)
	}
	tw.Close()
	return buf.Bytes()
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// BenchmarkApplyVsGNUTar unpacks the same layer with Apply and with GNU
// tar (-x, as root keeping owners), side by side, and reports the ratio of
// the medians. Run: go test -run XXX -bench ApplyVsGNUTar ./archive
func BenchmarkApplyVsGNUTar(b *testing.B) {
	gnutar, err := exec.LookPath("tar")
	if err != nil {
		b.Skip("no tar")
	}
	data := benchLayer(b)
	src := filepath.Join(b.TempDir(), "layer.tar")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	var ours, theirs []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d1 := filepath.Join(b.TempDir(), "berth")
		d2 := filepath.Join(b.TempDir(), "tar")
		os.Mkdir(d1, 0o755)
		os.Mkdir(d2, 0o755)
		t0 := time.Now()
		f, _ := os.Open(src)
		if _, err := Apply(d1, f, DefaultOptions()); err != nil {
			b.Fatal(err)
		}
		f.Close()
		ours = append(ours, time.Since(t0))
		t0 = time.Now()
		if out, err := exec.Command(gnutar, "-xpf", src, "-C", d2).CombinedOutput(); err != nil {
			b.Fatalf("tar: %v %s", err, out)
		}
		theirs = append(theirs, time.Since(t0))
		os.RemoveAll(d1)
		os.RemoveAll(d2)
	}
	b.StopTimer()
	mo, mt := median(ours), median(theirs)
	b.ReportMetric(float64(mo.Microseconds())/1000, "berth-ms")
	b.ReportMetric(float64(mt.Microseconds())/1000, "gnutar-ms")
	b.ReportMetric(float64(mo)/float64(mt), "ratio")
	b.ReportMetric(float64(len(data))/mo.Seconds()/(1<<20), "berth-MB/s")
}
