package kernelcheck

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
)

// layerFile writes an uncompressed layer tar of name→content files.
func layerFile(t *testing.T, files ...[2]string) resolve.Layer {
	t.Helper()
	p := filepath.Join(t.TempDir(), "layer.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, file := range files {
		if err := tw.WriteHeader(&tar.Header{Name: file[0], Mode: 0o644, Size: int64(len(file[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(file[1]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return resolve.Layer{Path: p}
}

func TestImageConfig(t *testing.T) {
	bz := string(fakeBzImage(compressTool(t, fakeVmlinux(t, sampleConfig), "gzip", "-9n")))
	other := strings.Replace(sampleConfig, "CONFIG_KEXEC=y", "# CONFIG_KEXEC is not set", 1)

	// kernel.config wins over the binary, and a later layer's copy wins.
	img := &resolve.Image{Name: "test/kernel:1", Layers: []resolve.Layer{
		layerFile(t, [2]string{"kernel", bz}, [2]string{"kernel.config", "CONFIG_OLD=y\n"}),
		layerFile(t, [2]string{"kernel.config", other}),
	}}
	cfg, src, err := ImageConfig(img, "")
	if err != nil || src != SourceConfig || string(cfg) != other {
		t.Fatalf("source %q, err %v, config %q", src, err, cfg)
	}

	// Without kernel.config the config comes out of the named binary.
	img = &resolve.Image{Name: "test/kernel:2", Layers: []resolve.Layer{layerFile(t, [2]string{"boot/bzImage", bz})}}
	cfg, src, err = ImageConfig(img, "boot/bzImage")
	if err != nil || src != SourceBzImage || string(cfg) != sampleConfig {
		t.Fatalf("source %q, err %v, config %q", src, err, cfg)
	}
	if _, _, err := ImageConfig(img, ""); err == nil || !strings.Contains(err.Error(), "no kernel.config and no kernel") {
		t.Fatalf("image without kernel: %v", err)
	}
}
