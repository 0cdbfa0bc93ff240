# The two commands of the README.  Everything else goes through CMake.
#   make run    build Release and run the main job: the default zcperf
#               tour on loopback (about 30 s)
#   make test   build and run every test through ctest
BUILD      ?= build
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all run test deps clean
all: $(BUILD)/.configured
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@tools/deps.sh build

$(BUILD)/.configured: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)
	@touch $@

run: all
	$(BUILD)/bench/zcperf/zcperf

test: all
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD)
