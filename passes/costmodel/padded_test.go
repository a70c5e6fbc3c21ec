package costmodel

import (
	"fmt"
	"testing"

	"cnnc/ir"
)

// convNode parses one conv2d from an input of shape x with weights w and
// the given attributes and output, channels last, on tile.
func convNode(t *testing.T, x, w, y string, attrs string, tile Tile) *ir.Node {
	t.Helper()
	g, err := ir.Parse(fmt.Sprintf(`graph c(%%x: f32[%s]) -> (%%1) {
  %%w = const f32[%s] @w
  %%1 = conv2d %%x, %%w %s : f32[%s] [k1 layout=nhwc]
}`, x, w, attrs, y))
	if err != nil {
		t.Fatal(err)
	}
	n := g.Nodes[len(g.Nodes)-1]
	n.Sched.Tile = tile.Ints()
	return n
}

// TestPaddedInputOf: the geometry of a padded input, and where there is
// none.
func TestPaddedInputOf(t *testing.T) {
	tc := TensorCoreTiles[0]
	stem := convNode(t, "32,3,224,224", "64,3,7,7", "32,64,112,112", "{pads=[3,3,3,3], strides=[2,2]}", tc)
	pi, ok := PaddedInputOf(stem)
	want := PaddedInput{N: 32, C: 3, Cp: 4, Hp: 229, Wp: 230, KH: 7, Run: 32, SH: 2, SW: 2, PT: 3, PL: 3, DH: 1, Ho: 112, Wo: 112, Outs: 64}
	if !ok || pi != want || pi.K() != 224 {
		t.Errorf("ResNet stem: %+v (%v), want %+v, K 224", pi, ok, want)
	}
	// Windows of 3 taps take rows of 16 halves; an odd stride or more
	// than 4 channels takes 8 per pixel.
	for _, c := range []struct {
		x, w, y, attrs string
		cp, run        int
	}{
		{"1,3,224,224", "32,3,3,3", "1,32,112,112", "{pads=[1,1,1,1], strides=[2,2]}", 4, 16},
		{"1,3,20,20", "16,3,3,3", "1,16,20,20", "{pads=[1,1,1,1]}", 8, 32},
		{"1,5,10,9", "16,5,5,5", "1,16,6,9", "{dilations=[2,1], pads=[2,2,2,2]}", 8, 64},
	} {
		pi, ok := PaddedInputOf(convNode(t, c.x, c.w, c.y, c.attrs, tc))
		if !ok || pi.Cp != c.cp || pi.Run != c.run || pi.Wp%2 != 0 {
			t.Errorf("%s * %s: %+v (%v), want %d channels, rows of %d, an even width", c.x, c.w, pi, ok, c.cp, c.run)
		}
	}
	for _, c := range []struct {
		why         string
		x, w, y, at string
		tile        Tile
	}{
		{"a SIMT tile", "32,3,224,224", "64,3,7,7", "32,64,112,112", "{pads=[3,3,3,3], strides=[2,2]}", DefaultTile},
		{"eight channels", "1,8,10,10", "16,8,3,3", "1,16,10,10", "{pads=[1,1,1,1]}", tc},
		{"a 1x1 window", "1,3,10,10", "16,3,1,1", "1,16,10,10", "", tc},
		{"horizontal dilation", "1,3,10,10", "16,3,3,3", "1,16,8,6", "{dilations=[1,2], pads=[0,0,0,0]}", tc},
	} {
		if pi, ok := PaddedInputOf(convNode(t, c.x, c.w, c.y, c.at, c.tile)); ok {
			t.Errorf("%s: padded as %+v", c.why, pi)
		}
	}
	// The workspace holds split-K partial sums, then the padded input.
	stem.Sched.SplitK = 2
	total, at := WorkspaceBytes(stem)
	if partial := int64(32*112*112) * 64 * 4 * 2; at != partial || total != at+alignWorkspace(want.Elems()*2) {
		t.Errorf("split stem workspace %d bytes, padded input at %d; want %d after %d", total, at, alignWorkspace(want.Elems()*2), partial)
	}
}
