package ir

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Parse reads the text form that Graph.String prints. Types are taken from
// the text as written; run Verify to check them against the op table.
// Const nodes printed as @blob have no data (Const is nil).
func Parse(text string) (*Graph, error) {
	p := &parser{}
	lines := strings.Split(text, "\n")
	g, err := p.parse(lines)
	if err != nil {
		return nil, fmt.Errorf("ir: line %d: %v", p.line, err)
	}
	return g, nil
}

// ParseSchedule reads a schedule in the text form Schedule.String
// writes: "[k3 tile=64,64,8,4,4 split_k=2 layout=nhwc]".
func ParseSchedule(text string) (Schedule, error) {
	toks, err := lex(text)
	if err != nil {
		return Schedule{}, err
	}
	p := &parser{toks: toks}
	if p.peek().kind != '[' {
		return Schedule{}, fmt.Errorf("schedule %q: want [kN ...]", text)
	}
	var n Node
	if err := p.schedule(&n); err != nil {
		return Schedule{}, fmt.Errorf("schedule %q: %v", text, err)
	}
	if p.pos != len(p.toks) {
		return Schedule{}, fmt.Errorf("schedule %q: text after the ]", text)
	}
	return n.Sched, nil
}

type token struct {
	kind byte // 'w' word, '%' value, '@' blob, '"' string, '#' comment, or the punctuation itself; '>' is "->"
	text string
}

type parser struct {
	line int
	toks []token
	pos  int

	pendingOutputs []string
}

func (p *parser) parse(lines []string) (*Graph, error) {
	var g *Graph
	vals := map[string]*Value{}
	done := false
	for i, l := range lines {
		p.line = i + 1
		toks, err := lex(l)
		if err != nil {
			return nil, err
		}
		p.toks, p.pos = toks, 0
		if len(toks) == 0 || toks[0].kind == '#' {
			continue
		}
		switch {
		case done:
			return nil, fmt.Errorf("text after the closing }")
		case g == nil:
			if g, err = p.header(vals); err != nil {
				return nil, err
			}
		case toks[0].kind == '}' && len(toks) == 1:
			done = true
		default:
			n, err := p.node(vals)
			if err != nil {
				return nil, err
			}
			g.Nodes = append(g.Nodes, n)
		}
	}
	if g == nil || !done {
		return nil, fmt.Errorf("unexpected end of text, want a graph closed by }")
	}
	for i, name := range p.pendingOutputs {
		v, ok := vals[name]
		if !ok {
			return nil, fmt.Errorf("graph output %%%s (number %d) is never defined", name, i)
		}
		g.Outputs = append(g.Outputs, v)
	}
	g.used = nil
	g.ensureNames()
	return g, nil
}

func (p *parser) peek() token {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return token{kind: '\n'}
}

func (p *parser) next() token {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *parser) expect(kind byte) (token, error) {
	t := p.next()
	if t.kind != kind {
		return t, fmt.Errorf("got %s, want %s", describeToken(t), describeKind(kind))
	}
	return t, nil
}

func describeToken(t token) string {
	if t.kind == '\n' {
		return "end of line"
	}
	return strconv.Quote(t.text)
}

func describeKind(k byte) string {
	switch k {
	case 'w':
		return "a word"
	case '%':
		return "a %value"
	case '>':
		return `"->"`
	}
	return strconv.Quote(string(k))
}

func (p *parser) header(vals map[string]*Value) (*Graph, error) {
	if t := p.next(); t.kind != 'w' || t.text != "graph" {
		return nil, fmt.Errorf("got %s, want \"graph\"", describeToken(t))
	}
	name, err := p.expect('w')
	if err != nil {
		return nil, err
	}
	g := &Graph{Name: name.text}
	if _, err := p.expect('('); err != nil {
		return nil, err
	}
	for p.peek().kind != ')' {
		if len(g.Inputs) > 0 {
			if _, err := p.expect(','); err != nil {
				return nil, err
			}
		}
		v, err := p.expect('%')
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(':'); err != nil {
			return nil, err
		}
		t, err := p.typ()
		if err != nil {
			return nil, err
		}
		if vals[v.text] != nil {
			return nil, fmt.Errorf("%%%s defined twice", v.text)
		}
		in := &Value{Name: v.text, Type: t}
		vals[v.text] = in
		g.Inputs = append(g.Inputs, in)
	}
	p.next()
	if _, err := p.expect('>'); err != nil {
		return nil, err
	}
	if _, err := p.expect('('); err != nil {
		return nil, err
	}
	for p.peek().kind != ')' {
		if len(p.pendingOutputs) > 0 {
			if _, err := p.expect(','); err != nil {
				return nil, err
			}
		}
		v, err := p.expect('%')
		if err != nil {
			return nil, err
		}
		p.pendingOutputs = append(p.pendingOutputs, v.text)
	}
	p.next()
	if _, err := p.expect('{'); err != nil {
		return nil, err
	}
	return g, p.end(nil)
}

func (p *parser) typ() (Type, error) {
	d, err := p.expect('w')
	if err != nil {
		return Type{}, err
	}
	dt, ok := ParseDType(d.text)
	if !ok {
		return Type{}, fmt.Errorf("unknown dtype %q", d.text)
	}
	dims, err := p.intList()
	if err != nil {
		return Type{}, err
	}
	return Type{DType: dt, Shape: dims}, nil
}

func (p *parser) intList() ([]int, error) {
	words, err := p.list()
	if err != nil {
		return nil, err
	}
	out := make([]int, len(words))
	for i, w := range words {
		if out[i], err = strconv.Atoi(w); err != nil {
			return nil, fmt.Errorf("got %q, want an integer", w)
		}
	}
	return out, nil
}

// list reads [w, w, ...] and returns the words.
func (p *parser) list() ([]string, error) {
	if _, err := p.expect('['); err != nil {
		return nil, err
	}
	var out []string
	for p.peek().kind != ']' {
		if len(out) > 0 {
			if _, err := p.expect(','); err != nil {
				return nil, err
			}
		}
		w, err := p.expect('w')
		if err != nil {
			return nil, err
		}
		out = append(out, w.text)
	}
	p.next()
	return out, nil
}

// end checks that the line is done, taking a trailing comment as origin.
func (p *parser) end(n *Node) error {
	t := p.next()
	if t.kind == '#' {
		if n != nil {
			n.Origin = t.text
		}
		t = p.next()
	}
	if t.kind != '\n' {
		return fmt.Errorf("got %s, want end of line", describeToken(t))
	}
	return nil
}

func (p *parser) node(vals map[string]*Value) (*Node, error) {
	out, err := p.expect('%')
	if err != nil {
		return nil, err
	}
	if vals[out.text] != nil {
		return nil, fmt.Errorf("%%%s defined twice", out.text)
	}
	if _, err := p.expect('='); err != nil {
		return nil, err
	}
	opName, err := p.expect('w')
	if err != nil {
		return nil, err
	}
	op, ok := LookupOp(opName.text)
	if !ok {
		return nil, fmt.Errorf("unknown op %q", opName.text)
	}
	n := &Node{Op: op, Attrs: Attrs{}}
	if op == OpConst {
		if err := p.constBody(n); err != nil {
			return nil, err
		}
	} else if err := p.opBody(n, vals); err != nil {
		return nil, err
	}
	n.Out.Name = out.text
	n.Out.Def = n
	vals[out.text] = n.Out
	return n, p.end(n)
}

func (p *parser) constBody(n *Node) error {
	t, err := p.typ()
	if err != nil {
		return err
	}
	n.Out = &Value{Type: t}
	if p.peek().kind == '@' {
		n.Blob = p.next().text
		return nil
	}
	words, err := p.list()
	if err != nil {
		return err
	}
	if int64(len(words)) != t.Elems() {
		return fmt.Errorf("const %s has %d values, want %d", t, len(words), t.Elems())
	}
	if t.DType.IsFloat() {
		vals := make([]float32, len(words))
		for i, w := range words {
			f, err := parseFloat(w)
			if err != nil {
				return err
			}
			vals[i] = float32(f)
		}
		n.Const = NewF32(t.Shape, vals)
		if t.DType == F16 {
			return fmt.Errorf("inline f16 constants are not supported, want a @blob")
		}
		return nil
	}
	vals := make([]int64, len(words))
	for i, w := range words {
		if vals[i], err = strconv.ParseInt(w, 10, 64); err != nil {
			return fmt.Errorf("got %q, want an integer", w)
		}
	}
	if t.DType != I64 {
		return fmt.Errorf("inline %s constants are not supported, want f32 or i64", t.DType)
	}
	n.Const = NewI64(t.Shape, vals)
	return nil
}

func parseFloat(w string) (float64, error) {
	switch w {
	case "inf":
		return math.Inf(1), nil
	case "-inf":
		return math.Inf(-1), nil
	case "nan":
		return math.NaN(), nil
	}
	f, err := strconv.ParseFloat(w, 64)
	if err != nil {
		return 0, fmt.Errorf("got %q, want a number", w)
	}
	return f, nil
}

func (p *parser) opBody(n *Node, vals map[string]*Value) error {
	for p.peek().kind == '%' {
		if len(n.Inputs) > 0 {
			return fmt.Errorf("got %s, want \",\" between inputs", describeToken(p.peek()))
		}
		for {
			v := p.next()
			in, ok := vals[v.text]
			if !ok {
				return fmt.Errorf("%%%s is used before it is defined", v.text)
			}
			n.Inputs = append(n.Inputs, in)
			if p.peek().kind != ',' {
				break
			}
			p.next()
			if p.peek().kind != '%' {
				return fmt.Errorf("got %s, want a %%value after \",\"", describeToken(p.peek()))
			}
		}
	}
	if p.peek().kind == '{' {
		p.next()
		for p.peek().kind != '}' {
			if len(n.Attrs) > 0 {
				if _, err := p.expect(','); err != nil {
					return err
				}
			}
			if err := p.attr(n); err != nil {
				return err
			}
		}
		p.next()
	}
	if _, err := p.expect(':'); err != nil {
		return err
	}
	t, err := p.typ()
	if err != nil {
		return err
	}
	n.Out = &Value{Type: t}
	n.Attrs = n.Op.withDefaults(n.Attrs)
	if p.peek().kind == '[' {
		return p.schedule(n)
	}
	return nil
}

// schedule reads "[kN tile=a,b,... split_k=S layout=nhwc]" after a node's
// type.
func (p *parser) schedule(n *Node) error {
	p.next()
	k, err := p.expect('w')
	if err != nil {
		return err
	}
	id, err := strconv.Atoi(strings.TrimPrefix(k.text, "k"))
	if err != nil || !strings.HasPrefix(k.text, "k") || id < 0 {
		return fmt.Errorf("got %q, want a kernel id kN", k.text)
	}
	n.Sched.Kernel = id
	for p.peek().kind == 'w' {
		key := p.next().text
		if _, err := p.expect('='); err != nil {
			return err
		}
		switch key {
		case "tile":
			for {
				w, err := p.expect('w')
				if err != nil {
					return err
				}
				v, err := strconv.Atoi(w.text)
				if err != nil || v < 1 {
					return fmt.Errorf("tile size %q, want a positive integer", w.text)
				}
				n.Sched.Tile = append(n.Sched.Tile, v)
				if p.peek().kind != ',' {
					break
				}
				p.next()
			}
		case "split_k":
			w, err := p.expect('w')
			if err != nil {
				return err
			}
			if n.Sched.SplitK, err = strconv.Atoi(w.text); err != nil || n.Sched.SplitK < 1 {
				return fmt.Errorf("split_k %q, want a positive integer", w.text)
			}
		case "reduce":
			w, err := p.expect('w')
			if err != nil {
				return err
			}
			if w.text != ReduceCluster {
				return fmt.Errorf("reduce %q, want %s (a workspace is the default and not written)", w.text, ReduceCluster)
			}
			n.Sched.Reduce = w.text
		case "persist":
			w, err := p.expect('w')
			if err != nil {
				return err
			}
			if n.Sched.Persist, err = strconv.Atoi(w.text); err != nil || n.Sched.Persist < 2 {
				return fmt.Errorf("persist %q, want an integer above 1 (blocks of a persistent GEMM)", w.text)
			}
		case "layout":
			w, err := p.expect('w')
			if err != nil {
				return err
			}
			if w.text != LayoutNHWC {
				return fmt.Errorf("layout %q, want %s (NCHW is the default and not written)", w.text, LayoutNHWC)
			}
			n.Sched.Layout = w.text
		default:
			return fmt.Errorf("unknown schedule key %q", key)
		}
	}
	_, err = p.expect(']')
	return err
}

func (p *parser) attr(n *Node) error {
	key, err := p.expect('w')
	if err != nil {
		return err
	}
	if _, err := p.expect('='); err != nil {
		return err
	}
	spec, ok := n.Op.attrSpec(key.text)
	if !ok {
		return fmt.Errorf("%s has no attribute %q", n.Op.Name, key.text)
	}
	if _, dup := n.Attrs[key.text]; dup {
		return fmt.Errorf("attribute %s given twice", key.text)
	}
	switch spec.Kind {
	case AttrInts:
		v, err := p.intList()
		if err != nil {
			return fmt.Errorf("attribute %s: %v", key.text, err)
		}
		n.Attrs[key.text] = v
	case AttrFloats:
		words, err := p.list()
		if err != nil {
			return fmt.Errorf("attribute %s: %v", key.text, err)
		}
		v := make([]float64, len(words))
		for i, w := range words {
			if v[i], err = parseFloat(w); err != nil {
				return fmt.Errorf("attribute %s: %v", key.text, err)
			}
		}
		n.Attrs[key.text] = v
	case AttrString:
		s, err := p.expect('"')
		if err != nil {
			return fmt.Errorf("attribute %s: %v", key.text, err)
		}
		n.Attrs[key.text] = s.text
	case AttrInt:
		w, err := p.expect('w')
		if err != nil {
			return fmt.Errorf("attribute %s: %v", key.text, err)
		}
		v, err := strconv.Atoi(w.text)
		if err != nil {
			return fmt.Errorf("attribute %s: got %q, want an integer", key.text, w.text)
		}
		n.Attrs[key.text] = v
	case AttrFloat:
		w, err := p.expect('w')
		if err != nil {
			return fmt.Errorf("attribute %s: %v", key.text, err)
		}
		v, err := parseFloat(w.text)
		if err != nil {
			return fmt.Errorf("attribute %s: %v", key.text, err)
		}
		n.Attrs[key.text] = v
	}
	return nil
}

// IsNameChar reports whether c may appear in a value or blob name.
func IsNameChar(c byte) bool {
	return c == '_' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isWordChar(c byte) bool { return IsNameChar(c) || c == '-' || c == '+' }

func lex(line string) ([]token, error) {
	var toks []token
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			toks = append(toks, token{'#', strings.TrimSpace(line[i+1:])})
			return toks, nil
		case c == '-' && i+1 < len(line) && line[i+1] == '>':
			toks = append(toks, token{'>', "->"})
			i += 2
		case c == '%' || c == '@':
			j := i + 1
			for j < len(line) && IsNameChar(line[j]) {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("empty name after %q", c)
			}
			toks = append(toks, token{c, line[i+1 : j]})
			i = j
		case c == '"':
			j := i + 1
			for j < len(line) && line[j] != '"' {
				if line[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(line) {
				return nil, fmt.Errorf("unterminated string")
			}
			s, err := strconv.Unquote(line[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("bad string %s", line[i:j+1])
			}
			toks = append(toks, token{'"', s})
			i = j + 1
		case strings.IndexByte("()[]{},=:", c) >= 0:
			toks = append(toks, token{c, string(c)})
			i++
		case isWordChar(c):
			j := i
			for j < len(line) && isWordChar(line[j]) {
				j++
			}
			toks = append(toks, token{'w', line[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected character %q", c)
		}
	}
	return toks, nil
}
