package costmodel

import (
	"math"
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
	gemm := Kernel{FLOPs: 1 << 34, Bytes: 1 << 20, Blocks: 4 * p.SMs, Threads: 256, Gemm: true, Tile: TileCandidates[0], KSlices: 512}
	big := p.Predict(gemm)
	if big.Bound != "compute" {
		t.Errorf("a 17 GFLOP GEMM on 1 MiB is %s-bound, want compute", big.Bound)
	}
	// Twice the K steps in the same grid take about twice the time.
	twice := gemm
	twice.KSlices *= 2
	if r := p.Predict(twice).Ns / big.Ns; r < 1.8 || r > 2.1 {
		t.Errorf("doubling K scales time by %.2f, want about 2", r)
	}
	// The 8x8 register tile beats the 4x4 one on a large problem, by
	// about the ratio of FMAs per shared load.
	small := gemm
	small.Tile, small.Blocks = DefaultTile, 4*gemm.Blocks
	if r := p.Predict(small).Ns / big.Ns; r < 1.1 || r > 2 {
		t.Errorf("the 4x4 tile takes %.2f times the 8x8 one's time, want between 1.1 and 2", r)
	}
	if e8, e4 := p.GemmEfficiency(TileCandidates[0], 288), p.GemmEfficiency(DefaultTile, 288); e8 <= e4 || e8 > p.GemmIssueEff {
		t.Errorf("GEMM efficiency %.2f (8x8) and %.2f (4x4): want 8x8 higher and under the issue efficiency", e8, e4)
	}
	// A grid of one block more than a wave needs a second wave.
	slots := p.SMs * p.Resident(gemm)
	one, two := gemm, gemm
	one.Blocks, two.Blocks = slots, slots+1
	if p.Predict(one).Waves != 1 || p.Predict(two).Waves != 2 {
		t.Errorf("waves for %d and %d blocks: %d and %d, want 1 and 2", slots, slots+1, p.Predict(one).Waves, p.Predict(two).Waves)
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
	p.GemmIssueEff, p.LaunchUs, p.Calibrated = 0.42, 4.5, true
	path := filepath.Join(t.TempDir(), "cal.json")
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.GemmIssueEff != 0.42 || got.LaunchUs != 4.5 || !got.Calibrated || got.SMs != p.SMs {
		t.Errorf("loaded %+v, want the saved values", got)
	}
	// A calibration written before wgmma_efficiency existed, under a card
	// name no built-in profile has: the datasheet profile of its
	// architecture fills the field in.
	old := filepath.Join(t.TempDir(), "old.json")
	os.WriteFile(old, []byte(`{"name": "NVIDIA H100 80GB HBM3", "sm": 90, "sms": 132, "fp32_tflops": 65.8, "fp16_tensor_tflops": 913.7,
		"dram_gbs": 2413, "max_threads_per_sm": 2048, "max_blocks_per_sm": 32, "registers_per_sm": 65536, "gemm_issue_efficiency": 0.9,
		"shared_load_instr": 1.65, "stage_instr": 40, "store_instr": 29, "depthwise_tap_instr": 18.7, "memory_efficiency": 1, "tensor_core_efficiency": 0.3}`), 0o644)
	if got, err := Load(old); err != nil || got.WgmmaEff != h100(t).WgmmaEff || got.FP16TCTFLOPS != 913.7 {
		t.Errorf("an older calibration loaded as %+v, %v; want the datasheet's wgmma efficiency and its own peak", got, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"name": "H100 SXM5 80GB", "gemm_issue_efficiency": 3}`), 0o644)
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

// TestFitRecoversProfile: launches timed by a known profile (with noise)
// let Fit recover that profile's parameters from a wrong start.
func TestFitRecoversProfile(t *testing.T) {
	truth := h100(t)
	truth.GemmIssueEff, truth.StoreInstr, truth.LaunchUs, truth.SliceLatencyUs, truth.GapUs = 0.8, 25, 3.0, 2.5, 1.5
	var samples []Sample
	noise := []float64{1.03, 0.98, 1.01, 0.97, 1.02, 0.99}
	for i := 0; i < 120; i++ {
		k := Kernel{Threads: 256, Blocks: 1 + (i*37)%900}
		switch i % 4 {
		case 0: // big GEMM on the 8x8 tile
			k.Gemm, k.FLOPs, k.Tile, k.KSlices, k.Bytes = true, int64(1+i)<<28, TileCandidates[0], 64+i, int64(i+1)<<20
		case 1: // small GEMM on the 2x2 tile, a block per SM: latency-bound
			k.Gemm, k.FLOPs, k.Tile, k.KSlices, k.Bytes = true, int64(1+i)<<20, TileCandidates[6], 40+i%16, 1<<16
			k.Blocks = 1 + (i*37)%400
		case 2: // streaming
			k.Bytes = int64(1+i) << 22
		default: // tiny
			k.Bytes, k.FLOPs = 4096, 1000
		}
		samples = append(samples, Sample{Kernel: k, MeasuredNs: truth.Predict(k).Ns * noise[i%len(noise)]})
	}
	start := h100(t)
	start.GemmIssueEff, start.StoreInstr, start.LaunchUs, start.SliceLatencyUs, start.GapUs = 0.4, 60, 6, 0.3, 0.5
	before := start.LogError(samples)
	got, err := start.Fit(samples)
	if err != nil {
		t.Fatal(err)
	}
	after := got.LogError(samples)
	if after > 0.05 || after > before/4 {
		t.Errorf("log error %.3f before, %.3f after the fit; want under 0.05", before, after)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"8x8 GEMM efficiency", got.GemmEfficiency(TileCandidates[0], 288), truth.GemmEfficiency(TileCandidates[0], 288)},
		{"SliceLatencyUs", got.SliceLatencyUs, truth.SliceLatencyUs}} {
		if math.Abs(c.got/c.want-1) > 0.15 {
			t.Errorf("%s = %.3g, want about %.3g", c.name, c.got, c.want)
		}
	}
	if _, err := start.Fit(samples[:3]); err == nil {
		t.Error("Fit on 3 samples succeeded")
	}
}

// TestSolveGemmIssue: the efficiencies a profile predicts for the 4x4 and
// 8x8 calibration tiles give back its issue efficiency and shared-load
// cost; efficiencies no positive cost explains still give an issue
// efficiency that reproduces the 8x8 tile.
func TestSolveGemmIssue(t *testing.T) {
	truth := h100(t)
	truth.GemmIssueEff, truth.SharedLoadInstr = 0.85, 2.5
	tiles := [2]Tile{DefaultTile, TileCandidates[0]}
	effs := [2]float64{truth.GemmEfficiency(tiles[0], 288), truth.GemmEfficiency(tiles[1], 288)}
	got := h100(t).SolveGemmIssue(tiles, effs, 288)
	if math.Abs(got.GemmIssueEff-0.85) > 1e-6 || math.Abs(got.SharedLoadInstr-2.5) > 1e-6 {
		t.Errorf("solved issue efficiency %.4f and shared load %.4f, want 0.85 and 2.5", got.GemmIssueEff, got.SharedLoadInstr)
	}
	// The 4x4 tile as fast as the 8x8 one: no positive shared-load cost.
	flat := h100(t).SolveGemmIssue(tiles, [2]float64{0.44, 0.44}, 288)
	if e := flat.GemmEfficiency(tiles[1], 288); math.Abs(e-0.44) > 1e-6 || flat.SharedLoadInstr != h100(t).SharedLoadInstr {
		t.Errorf("fallback: 8x8 efficiency %.4f (want 0.44), shared load %.3f (want unchanged)", e, flat.SharedLoadInstr)
	}
}

// TestWgmmaAndHalfStorage: on a wgmma target a pipelined warpgroup tile
// loads no fragments and runs at WgmmaEff, so it predicts faster than the
// same kernel on mma.sync, while other tiles predict alike; its stages
// leave two blocks an SM where three fit; fp16 storage halves a kernel's
// memory time.
func TestWgmmaAndHalfStorage(t *testing.T) {
	p := h100(t)
	wg := p
	wg.Wgmma = true
	var tile Tile
	for _, c := range TensorCoreTiles {
		if c.WarpgroupTile() && c.BN == 128 && c.BM == 128 {
			tile = c
		}
	}
	if tile.BM == 0 {
		t.Fatal("no 128x128 warpgroup tile")
	}
	k := Kernel{FLOPs: 1 << 34, Bytes: 1 << 20, Blocks: 4 * p.SMs, Threads: tile.Threads(), Gemm: true, TensorCore: true,
		Pipelined: true, VectorStageA: true, VectorStageB: true, Tile: tile, KSlices: 64, Shared: tile.PipelinedShared(), Regs: tile.Regs()}
	if sync, async := p.Predict(k).Ns, wg.Predict(k).Ns; !(async < sync) {
		t.Errorf("warpgroup tile: %.0f ns on wgmma, %.0f on mma.sync; want wgmma faster", async, sync)
	}
	other := k
	other.Tile = TensorCoreTiles[0]
	if other.Tile.WarpgroupTile() {
		t.Fatalf("tile %v is a warpgroup tile", other.Tile)
	}
	if a, b := p.Predict(other).Ns, wg.Predict(other).Ns; a != b {
		t.Errorf("tile %v predicts %.0f ns and %.0f ns with and without wgmma", other.Tile, b, a)
	}
	if s := tile.WgmmaStages(); s != 3 || 2*tile.WgmmaShared() > p.SharedBytesSM {
		t.Errorf("tile %v: %d stages, %d bytes: want 3 stages and two blocks an SM", tile, s, tile.WgmmaShared())
	}
	stream := Kernel{Bytes: 1 << 30, Blocks: 1 << 16, Threads: 256}
	half := p
	half.HalfStorage = true
	if a, b := p.Predict(stream).MemoryNs, half.Predict(stream).MemoryNs; math.Abs(b/a-0.5) > 1e-9 {
		t.Errorf("fp16 storage: memory time %.0f ns of %.0f, want half", b, a)
	}
	// A fit sample predicts as it was compiled, whatever the profile says.
	if a, b := (Sample{Kernel: stream, HalfStorage: true}).Predict(p).MemoryNs, half.Predict(stream).MemoryNs; a != b {
		t.Errorf("an fp16 sample: memory time %.0f ns, want %.0f", a, b)
	}
	// Split-K's float partial sums are not halved.
	ws := stream
	ws.Bytes, ws.WorkspaceBytes = 0, 1<<30
	if a, b := p.Predict(ws).MemoryNs, half.Predict(ws).MemoryNs; a != b {
		t.Errorf("workspace traffic: %.0f ns in fp16, %.0f in fp32; want the same", b, a)
	}
}

// TestPersistBlocks: a wgmma GEMM of more tiles than SMs persists with a
// block per estimated slot (never more blocks than tiles); one of fewer
// tiles, a K split, a batch, a 256-row tile, a partial 64-column group,
// or the mma.sync core does not.
func TestPersistBlocks(t *testing.T) {
	p := h100(t)
	p.Wgmma = true
	wide := Tile{128, 256, 64, 64, 64}
	k := Kernel{Gemm: true, TensorCore: true, Pipelined: true, Tile: wide, Threads: wide.Threads(), Regs: wide.Regs()}
	k.Blocks = 392 // ResNet-50 b32's layer2 1x1+shortcut
	slots := p.Slots(k)
	if got := p.PersistBlocks(k, 512, 1, 1); got != min(slots, 392) || got < 2 {
		t.Errorf("392 tiles of %v: %d blocks, want %d (the slots)", wide, got, slots)
	}
	few := k
	few.Blocks = p.SMs
	tall := k
	tall.Tile = Tile{256, 128, 64, 64, 32}
	sync := k
	sync.Pipelined = false
	for _, c := range []struct {
		what            string
		k               Kernel
		n, batch, split int
	}{
		{"one tile an SM", few, 512, 1, 1},
		{"a K split", k, 512, 1, 2},
		{"a batch", k, 512, 2, 1},
		{"256-row tiles", tall, 512, 1, 1},
		{"N not in eights", k, 510, 1, 1},
		{"the mma.sync core", sync, 512, 1, 1},
	} {
		if got := p.PersistBlocks(c.k, c.n, c.batch, c.split); got != 0 {
			t.Errorf("%s: %d persistent blocks, want none", c.what, got)
		}
	}
	p.Wgmma = false
	if got := p.PersistBlocks(k, 512, 1, 1); got != 0 {
		t.Errorf("without wgmma: %d persistent blocks, want none", got)
	}
}
