package ir

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// String prints the graph in its text form; Parse reads it back.
func (g *Graph) String() string {
	var b strings.Builder
	b.WriteString("graph ")
	b.WriteString(g.Name)
	b.WriteByte('(')
	for i, v := range g.Inputs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v.String())
		b.WriteString(": ")
		b.WriteString(v.Type.String())
	}
	b.WriteString(") -> (")
	for i, v := range g.Outputs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v.String())
	}
	b.WriteString(") {\n")
	for _, n := range g.Nodes {
		b.WriteString("  ")
		b.WriteString(n.String())
		b.WriteByte('\n')
	}
	b.WriteString("}\n")
	return b.String()
}

// String prints one node as a line of the text form (no indent, no newline).
func (n *Node) String() string {
	var b strings.Builder
	b.WriteString(n.Out.String())
	b.WriteString(" = ")
	b.WriteString(n.Op.Name)
	if n.Op == OpConst {
		b.WriteByte(' ')
		b.WriteString(n.Out.Type.String())
		b.WriteByte(' ')
		if n.Blob != "" {
			b.WriteString("@" + n.Blob)
		} else {
			writeConstData(&b, n.Const)
		}
	} else {
		for i, in := range n.Inputs {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte(' ')
			b.WriteString(in.String())
		}
		writeAttrs(&b, n.Attrs)
		b.WriteString(" : ")
		b.WriteString(n.Out.Type.String())
		if s := n.Sched.String(); s != "" {
			b.WriteString(" ")
			b.WriteString(s)
		}
	}
	if n.Origin != "" {
		b.WriteString("  # ")
		b.WriteString(strings.ReplaceAll(n.Origin, "\n", " "))
	}
	return b.String()
}

func writeAttrs(b *strings.Builder, a Attrs) {
	if len(a) == 0 {
		return
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b.WriteString(" {")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(FormatAttr(a[k]))
	}
	b.WriteByte('}')
}

// FormatAttr prints an attribute value as the text form writes it.
func FormatAttr(v any) string {
	switch x := v.(type) {
	case int:
		return strconv.Itoa(x)
	case float64:
		return formatFloat(x, 64)
	case string:
		return strconv.Quote(x)
	case []int:
		s := make([]string, len(x))
		for i, e := range x {
			s[i] = strconv.Itoa(e)
		}
		return "[" + strings.Join(s, ",") + "]"
	case []float64:
		s := make([]string, len(x))
		for i, e := range x {
			s[i] = formatFloat(e, 64)
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	return "?"
}

func formatFloat(x float64, bits int) string {
	switch {
	case math.IsInf(x, 1):
		return "inf"
	case math.IsInf(x, -1):
		return "-inf"
	case math.IsNaN(x):
		return "nan"
	}
	return strconv.FormatFloat(x, 'g', -1, bits)
}

func writeConstData(b *strings.Builder, t *Tensor) {
	b.WriteByte('[')
	if t != nil {
		if t.DType.IsFloat() {
			for i, v := range t.Float32s() {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(formatFloat(float64(v), 32))
			}
		} else {
			for i, v := range t.Int64s() {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(strconv.FormatInt(v, 10))
			}
		}
	}
	b.WriteByte(']')
}
