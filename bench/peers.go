package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Peer is one measurement of another framework on the same model, batch
// and card, as bench/peers/torchvision_models.py peers prints it.
type Peer struct {
	Peer      string  `json:"peer"`
	Model     string  `json:"model"`
	Batch     int     `json:"batch"`
	Precision string  `json:"precision"`
	Card      string  `json:"card"`
	MedianMs  float64 `json:"median_ms"`
	CompileS  float64 `json:"compile_s"`
	Error     string  `json:"error,omitempty"`
}

// ReadPeers reads a JSON-lines file of peer measurements.
func ReadPeers(path string) ([]Peer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Peer
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || !strings.HasPrefix(text, "{") {
			continue // the script's log lines
		}
		var p Peer
		if err := json.Unmarshal([]byte(text), &p); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if p.Peer != "" && p.Model != "" {
			out = append(out, p)
		}
	}
	return out, sc.Err()
}

// AddPeers keeps the peers measured on the report's model (by file name
// without .onnx), batch, precision and card.
func (r *Report) AddPeers(peers []Peer) {
	model := strings.TrimSuffix(r.Model, ".onnx")
	for _, p := range peers {
		if p.Model == model && p.Batch == r.Batch && (p.Precision == "" || p.Precision == r.Precision) && (p.Card == "" || p.Card == r.Card) {
			r.Peers = append(r.Peers, p)
		}
	}
}
