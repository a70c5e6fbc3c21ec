# cnnc: the README's commands live here.
GO ?= go
FUZZTIME ?= 15s

.PHONY: all build demo test fuzz vet gpu-bin

all: build

build:
	$(GO) build -o .bin/cnnc ./cmd/cnnc

# The main job on the embedded example model.
demo:
	$(GO) run ./cmd/cnnc demo

vet:
	$(GO) vet ./...
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt would change: $$bad"; exit 1; fi

# Everything that needs no GPU: vet, unit and conformance tests, then each
# fuzz target for a short, fixed time.
test: vet
	$(GO) test ./...
	$(MAKE) fuzz

fuzz:
	$(GO) test ./frontend/onnx -run '^$$' -fuzz '^FuzzDecodeModel$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ir -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./artifact -run '^$$' -fuzz '^FuzzDecodePlan$$' -fuzztime $(FUZZTIME)

# Everything one device call needs, in .bin/ (git-ignored), packed into .bin.tgz:
# the CLI, the GPU test binaries and a copy of the conformance data.
GPU_TESTS = e2e runtime runtime/cuda runtime/cudnn runtime/nvml cmd/cnnc
gpu-bin:
	$(GO) build -ldflags='-s -w' -o .bin/cnnc ./cmd/cnnc
	for p in $(GPU_TESTS); do $(GO) test -c -ldflags='-s -w' -o .bin/$$(echo $$p | tr / _).test ./$$p || exit 1; done
	rm -rf .bin/onnx-tests && cp -r ../shared/onnx-tests .bin/onnx-tests
	# What travels to the GPU machine is capped at 64 MiB: carry the
	# packed copy (carry: [".bin.tgz"]; unpack there with tar xzf .bin.tgz).
	tar czf .bin.tgz .bin
