package costmodel

import (
	"os"
	"path/filepath"
	"testing"
)

func h100(t *testing.T) Profile {
	t.Helper()
	p, err := Lookup("sm_90")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPredictShapes(t *testing.T) {
	p := h100(t)
	gemm := Kernel{FLOPs: 1 << 34, Bytes: 1 << 20, Blocks: 4 * p.SMs, Threads: 256, Gemm: true}
	big := p.Predict(gemm)
	if big.Bound != "compute" {
		t.Errorf("a 17 GFLOP GEMM on 1 MiB is %s-bound, want compute", big.Bound)
	}
	// Twice the work in the same grid takes about twice the time.
	twice := gemm
	twice.FLOPs *= 2
	if r := p.Predict(twice).Ns / big.Ns; r < 1.8 || r > 2.1 {
		t.Errorf("doubling FLOPs scales time by %.2f, want about 2", r)
	}
	// A grid of one block more than a wave needs a second wave.
	slots := p.SMs * p.Resident(gemm)
	one, two := gemm, gemm
	one.Blocks, two.Blocks = slots, slots+1
	if p.Predict(one).Waves != 1 || p.Predict(two).Waves != 2 {
		t.Errorf("waves for %d and %d blocks: %d and %d, want 1 and 2", slots, slots+1, p.Predict(one).Waves, p.Predict(two).Waves)
	}
	// Padded tiles cost their padding.
	padded := gemm
	padded.TileEff = 0.5
	if r := p.Predict(padded).Ns / big.Ns; r < 1.8 {
		t.Errorf("half-empty tiles scale time by %.2f, want about 2", r)
	}
	// A tiny kernel costs the launch interval.
	tiny := p.Predict(Kernel{FLOPs: 10, Bytes: 64, Blocks: 1, Threads: 32})
	if tiny.Bound != "launch" || tiny.Ns != p.LaunchUs*1e3 {
		t.Errorf("tiny kernel: %v, want the launch interval %.1f us", tiny, p.LaunchUs)
	}
	// Streaming 1 GiB is memory-bound near DRAM speed.
	stream := p.Predict(Kernel{Bytes: 1 << 30, Blocks: 1 << 16, Threads: 256})
	want := float64(1<<30) / (p.DRAMGBs * 1e9 * p.MemEff) * 1e9
	if stream.Bound != "memory" || stream.Ns < want || stream.Ns > want*1.1 {
		t.Errorf("1 GiB stream: %v, want about %.0f us", stream, want/1e3)
	}
}

func TestCalibrationFile(t *testing.T) {
	p := h100(t)
	p.GemmEff, p.LaunchUs, p.Calibrated = 0.42, 4.5, true
	path := filepath.Join(t.TempDir(), "cal.json")
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.GemmEff != 0.42 || got.LaunchUs != 4.5 || !got.Calibrated || got.SMs != p.SMs {
		t.Errorf("loaded %+v, want the saved values", got)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"name": "H100 SXM5 80GB", "gemm_efficiency": 3}`), 0o644)
	if _, err := Load(bad); err == nil {
		t.Error("a GEMM efficiency of 3 was accepted")
	}
	if _, err := Lookup("tpu"); err == nil {
		t.Error("Lookup(tpu) succeeded")
	}
}

func TestTiles(t *testing.T) {
	for _, tile := range TileCandidates {
		if tile.Threads() != 256 {
			t.Errorf("tile %v has %d threads, the loaders want 256", tile, tile.Threads())
		}
		if tile.BM*tile.BK%256 != 0 || tile.BN*tile.BK%256 != 0 {
			t.Errorf("tile %v: slices do not divide over 256 threads", tile)
		}
	}
	if got := KSlice(100, 4, 8); got != 32 {
		t.Errorf("KSlice(100, 4, 8) = %d, want 32", got)
	}
	if got := GemmTileEff(100, 49, Tile{64, 64, 8, 4, 4}); got != float64(100*49)/float64(128*64) {
		t.Errorf("GemmTileEff = %v", got)
	}
}
