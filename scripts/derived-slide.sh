# Sourced by the benchmarks. Needs $sample (the bundled slide) and $workdir set.
# make_slide N: WORKDIR/slide-N.tif, a N×N pyramidal TIFF (JPEG Q90, 256px tiles) built from
# mirrored copies of the sample slide, so neighbouring copies meet without a seam.
make_slide() {
  local n=$1 out=$workdir/slide-$1.tif
  if [ -f "$out" ] && [ "$(vipsheader -f width "$out" 2>/dev/null)x$(vipsheader -f height "$out" 2>/dev/null)" = "${n}x$n" ]; then
    echo "slide: using cached $out (derived data)" >&2
    return
  fi
  local tmp=$workdir/build-$n
  rm -rf "$tmp"; mkdir -p "$tmp"
  echo "slide: building ${n}x${n} derived pyramidal TIFF from $(basename "$sample") in $tmp" >&2
  # openslide gives RGBA: flatten the (opaque) alpha onto white to get 3-band RGB
  vips flatten "$sample" "$tmp/v0.v" --background 255
  vips flip "$tmp/v0.v" "$tmp/v1.v" horizontal
  vips flip "$tmp/v0.v" "$tmp/v2.v" vertical
  vips flip "$tmp/v1.v" "$tmp/v3.v" vertical
  local w h cols rows i j list=()
  w=$(vipsheader -f width "$tmp/v0.v"); h=$(vipsheader -f height "$tmp/v0.v")
  cols=$(( (n + w - 1) / w )); rows=$(( (n + h - 1) / h ))
  for ((j = 0; j < rows; j++)); do
    for ((i = 0; i < cols; i++)); do
      list+=("$tmp/v$(( (i % 2) + 2 * (j % 2) )).v")   # 0 as is, 1 mirrored, 2 flipped, 3 both
    done
  done
  vips arrayjoin "${list[*]}" "$tmp/joined.v" --across "$cols"
  vips crop "$tmp/joined.v" "$tmp/level0.v" 0 0 "$n" "$n"
  rm -f "$tmp/joined.v"
  vips tiffsave "$tmp/level0.v" "$tmp/slide.tif" --tile --pyramid --compression jpeg --Q 90 \
    --tile-width 256 --tile-height 256
  mv "$tmp/slide.tif" "$out"
  rm -rf "$tmp"
  echo "slide: wrote $out ($(du -h "$out" | cut -f1)); derived data, not a real ${n}x${n} scan" >&2
}

