package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"cnnc/ir"
)

// layerRow is one line of the per-layer table.
type layerRow struct {
	Name      string  `json:"name"`
	Op        string  `json:"op"`
	Shape     []int   `json:"shape"`
	Params    int64   `json:"params"`
	FLOPs     int64   `json:"flops"`
	MinBytes  int64   `json:"min_bytes"`
	Intensity float64 `json:"intensity"` // FLOPs per minimum byte
}

type tensorInfo struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Shape []int  `json:"shape"`
}

type inspectReport struct {
	Model   string       `json:"model"`
	Inputs  []tensorInfo `json:"inputs"`
	Outputs []tensorInfo `json:"outputs"`
	Layers  []layerRow   `json:"layers"`
	Total   layerRow     `json:"total"`
	IR      string       `json:"ir,omitempty"`
}

// loadFlags are the model-loading flags that several commands share.
type loadFlags struct{ batch int }

func (l *loadFlags) register(fs interface {
	IntVar(*int, string, int, string)
}) {
	fs.IntVar(&l.batch, "batch", 0, "set the batch (dimension 0 of every input); 0 keeps the model's, 1 for a symbolic one")
}

func runInspect(args []string, stdout io.Writer) error {
	fs := newFlags("inspect", "inspect model.onnx [--batch N] [--json]", stdout)
	var lf loadFlags
	lf.register(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	noIR := fs.Bool("no-ir", false, "leave the IR text out")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return badInputf("want one model file, got %d arguments; see 'cnnc inspect --help'", len(pos))
	}
	g, _, err := loadBinding(pos[0], lf, nil)
	if err != nil {
		return err
	}
	rep := buildInspectReport(pos[0], g)
	if *noIR {
		rep.IR = ""
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printInspectReport(stdout, rep)
	return nil
}

func buildInspectReport(model string, g *ir.Graph) *inspectReport {
	rep := &inspectReport{Model: model, IR: g.String(), Total: layerRow{Name: "total"}}
	for i, v := range g.Inputs {
		rep.Inputs = append(rep.Inputs, tensorInfo{g.ExternalInputName(i), v.Type.DType.String(), v.Type.Shape})
	}
	for i, v := range g.Outputs {
		rep.Outputs = append(rep.Outputs, tensorInfo{g.ExternalOutputName(i), v.Type.DType.String(), v.Type.Shape})
	}
	for _, n := range g.Nodes {
		if n.Op == ir.OpConst {
			continue
		}
		name := n.Origin
		if name == "" {
			name = n.Out.String()
		}
		row := layerRow{Name: name, Op: n.Op.Name, Shape: n.Out.Type.Shape, Params: n.Params(), FLOPs: n.FLOPs(), MinBytes: n.MinBytes()}
		row.Intensity = intensity(row.FLOPs, row.MinBytes)
		rep.Layers = append(rep.Layers, row)
		rep.Total.Params += row.Params
		rep.Total.FLOPs += row.FLOPs
		rep.Total.MinBytes += row.MinBytes
	}
	rep.Total.Intensity = intensity(rep.Total.FLOPs, rep.Total.MinBytes)
	return rep
}

func intensity(flops, bytes int64) float64 {
	if bytes == 0 {
		return 0
	}
	return float64(flops) / float64(bytes)
}

func printInspectReport(w io.Writer, rep *inspectReport) {
	if rep.IR != "" {
		fmt.Fprintln(w, rep.IR)
	}
	for _, in := range rep.Inputs {
		fmt.Fprintf(w, "input  %s: %s%v\n", in.Name, in.DType, in.Shape)
	}
	for _, out := range rep.Outputs {
		fmt.Fprintf(w, "output %s: %s%v\n", out.Name, out.DType, out.Shape)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\top\toutput\tparams\tMFLOPs\tmin KB\tFLOP/B\t")
	for _, r := range rep.Layers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.2f\t%.1f\t%.1f\t\n", shorten(r.Name, 40), r.Op, shapeString(r.Shape),
			r.Params, float64(r.FLOPs)/1e6, float64(r.MinBytes)/1024, r.Intensity)
	}
	t := rep.Total
	fmt.Fprintf(tw, "total (%d layers)\t\t\t%d\t%.2f\t%.1f\t%.1f\t\n", len(rep.Layers), t.Params, float64(t.FLOPs)/1e6, float64(t.MinBytes)/1024, t.Intensity)
	tw.Flush()
	fmt.Fprintf(w, "\nmodel FLOPs %.3f G (2 x multiply-accumulates of convolutions and matrix products), parameters %.3f M\n",
		float64(t.FLOPs)/1e9, float64(t.Params)/1e6)
}

func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// shorten keeps the end of a long layer name, which is its most specific part.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}
