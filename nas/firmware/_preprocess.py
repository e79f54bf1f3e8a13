"""The model's preprocessing as C: from a raw image as the dataset stores it (uint8, height x width x
channels) to the input tensor, with the arithmetic `nas.data.prepare` and the converted model's
input quantization use, so that firmware feeds the model what it was trained and measured on.

The steps, in `prepare`'s order: grey to RGB (repeated) or RGB to grey (0.299, 0.587, 0.114); where
the size differs, TensorFlow's antialiased bilinear resize (`tf.image.resize(..., antialias=True)`,
a triangle kernel widened by the downscale factor, separable: rows, then columns) clipped to
[0, 255]; division by 255; and for an integer input, q = round(x / scale) + zero_point (to nearest,
ties to even, as NumPy rounds), clamped to the type's range. Float arithmetic in single precision,
as the Python side computes it; a rounding tie may land one step apart, which the golden check
allows for and counts.
"""

from __future__ import annotations

__all__ = ["preprocess_sources"]

_CTYPES = {"int8": ("int8_t", -128, 127), "uint8": ("uint8_t", 0, 255), "int16": ("int16_t", -32768, 32767),
           "float32": ("float", None, None)}

_BODY = r"""
#if NAS_RAW_HEIGHT != NAS_HEIGHT || NAS_RAW_WIDTH != NAS_WIDTH
// TensorFlow's ScaleAndTranslate spans for one axis (triangle kernel, antialiased): for each output
// position, the first input index and NAS_SPAN weights (zero past the span's end).
static void nas_spans(int in_size, int out_size, int* starts, float* weights) {
  const float scale = (float)out_size / (float)in_size;
  const float inv_scale = 1.0f / scale;
  const float kernel_scale = inv_scale > 1.0f ? inv_scale : 1.0f;
  const float one_over_kernel_scale = 1.0f / kernel_scale;
  for (int x = 0; x < out_size; ++x) {
    const float sample = ((float)x + 0.5f) * inv_scale;
    int start = (int)ceilf(sample - kernel_scale - 0.5f);
    int end = (int)floorf(sample + kernel_scale - 0.5f);
    start = start < 0 ? 0 : (start > in_size - 1 ? in_size - 1 : start);
    end = (end < 0 ? 0 : (end > in_size - 1 ? in_size - 1 : end)) + 1;
    float total = 0.0f;
    float* w = weights + x * NAS_SPAN;
    for (int i = 0; i < NAS_SPAN; ++i) w[i] = 0.0f;
    for (int s = start; s < end && s - start < NAS_SPAN; ++s) {
      const float at = fabsf(((float)s + 0.5f - sample) * one_over_kernel_scale);
      w[s - start] = at < 1.0f ? 1.0f - at : 0.0f;
      total += w[s - start];
    }
    if (fabsf(total) >= 1000.0f * FLT_MIN) {
      const float inv_total = 1.0f / total;
      for (int i = 0; i < end - start && i < NAS_SPAN; ++i) w[i] *= inv_total;
    }
    starts[x] = start;
  }
}
#endif

// The raw pixel at (y, x) in the model's channel layout, as a float.
static float nas_pixel(const unsigned char* raw, int width, int y, int x, int c) {
  const unsigned char* p = raw + ((size_t)y * width + x) * NAS_RAW_CHANNELS;
#if NAS_RAW_CHANNELS == NAS_CHANNELS
  return (float)p[c];
#elif NAS_CHANNELS == 3
  (void)c;
  return (float)p[0];
#else
  (void)c;
  return (float)p[0] * 0.299f + (float)p[1] * 0.587f + (float)p[2] * 0.114f;
#endif
}

static NAS_INPUT_CTYPE nas_quantize(float v) {
#ifdef NAS_INPUT_FLOAT
  return v;
#else
  float q = nearbyintf(v / NAS_PRE_SCALE + (float)NAS_PRE_ZERO_POINT);
  q = q < (float)NAS_INPUT_MIN ? (float)NAS_INPUT_MIN : (q > (float)NAS_INPUT_MAX ? (float)NAS_INPUT_MAX : q);
  return (NAS_INPUT_CTYPE)q;
#endif
}

void nas_preprocess(const unsigned char* raw, NAS_INPUT_CTYPE* input) {
#if NAS_RAW_HEIGHT == NAS_HEIGHT && NAS_RAW_WIDTH == NAS_WIDTH
  for (int y = 0; y < NAS_HEIGHT; ++y)
    for (int x = 0; x < NAS_WIDTH; ++x)
      for (int c = 0; c < NAS_CHANNELS; ++c)
        input[((size_t)y * NAS_WIDTH + x) * NAS_CHANNELS + c] = nas_quantize(nas_pixel(raw, NAS_RAW_WIDTH, y, x, c) / 255.0f);
#else
  static int row_start[NAS_HEIGHT], col_start[NAS_WIDTH];
  static float row_w[NAS_HEIGHT * NAS_SPAN], col_w[NAS_WIDTH * NAS_SPAN];
  static float rows[NAS_HEIGHT * NAS_RAW_WIDTH * NAS_CHANNELS];  // resized along y first, as TensorFlow does
  nas_spans(NAS_RAW_HEIGHT, NAS_HEIGHT, row_start, row_w);
  nas_spans(NAS_RAW_WIDTH, NAS_WIDTH, col_start, col_w);
  for (int y = 0; y < NAS_HEIGHT; ++y)
    for (int x = 0; x < NAS_RAW_WIDTH; ++x)
      for (int c = 0; c < NAS_CHANNELS; ++c) {
        float sum = 0.0f;
        for (int i = 0; i < NAS_SPAN && row_start[y] + i < NAS_RAW_HEIGHT; ++i)
          sum += row_w[y * NAS_SPAN + i] * nas_pixel(raw, NAS_RAW_WIDTH, row_start[y] + i, x, c);
        rows[((size_t)y * NAS_RAW_WIDTH + x) * NAS_CHANNELS + c] = sum;
      }
  for (int y = 0; y < NAS_HEIGHT; ++y)
    for (int x = 0; x < NAS_WIDTH; ++x)
      for (int c = 0; c < NAS_CHANNELS; ++c) {
        float sum = 0.0f;
        for (int i = 0; i < NAS_SPAN && col_start[x] + i < NAS_RAW_WIDTH; ++i)
          sum += col_w[x * NAS_SPAN + i] * rows[((size_t)y * NAS_RAW_WIDTH + col_start[x] + i) * NAS_CHANNELS + c];
        sum = sum < 0.0f ? 0.0f : (sum > 255.0f ? 255.0f : sum);
        input[((size_t)y * NAS_WIDTH + x) * NAS_CHANNELS + c] = nas_quantize(sum / 255.0f);
      }
#endif
}
"""


def _span(in_size: int, out_size: int) -> int:
    """The largest number of input pixels one output pixel weighs (TensorFlow's span size)."""
    import math

    kernel_scale = max(in_size / out_size, 1.0)
    return min(2 * math.ceil(kernel_scale) + 1, in_size)


def preprocess_sources(raw_shape: tuple[int, int, int], input_detail: dict) -> dict[str, str]:
    """`preprocess.h` and `preprocess.c` for raw images of `raw_shape` (height, width, channels) and
    the model's input tensor (`input_detail`: shape [1, h, w, c], dtype, scale, zero_point)."""
    raw_h, raw_w, raw_c = (int(v) for v in raw_shape)
    _, height, width, channels = (int(v) for v in input_detail["shape"])
    dtype = str(input_detail["dtype"])
    if dtype not in _CTYPES:
        raise ValueError(f"no preprocessing for a {dtype} input")
    ctype, low, high = _CTYPES[dtype]
    span = max(_span(raw_h, height), _span(raw_w, width))
    header = ("#ifndef NAS_PREPROCESS_H_\n#define NAS_PREPROCESS_H_\n\n#include <stdint.h>\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
              f"// The raw image the model's preprocessing takes: uint8, {raw_h} x {raw_w} x {raw_c} (height, width, channels),\n"
              f"// as the dataset stores it; the model's input: {dtype}, {height} x {width} x {channels}.\n"
              f"#define NAS_RAW_HEIGHT {raw_h}\n#define NAS_RAW_WIDTH {raw_w}\n#define NAS_RAW_CHANNELS {raw_c}\n"
              f"#define NAS_PRE_INPUT_CTYPE {ctype}\n"
              "// how far a value may land from the Python pipeline's: one step of an integer input, an ulp or two of a float\n"
              f"#define NAS_PRE_TOLERANCE {'1' if low is not None else '1e-6'}\n\n"
              "// Resize, scale to [0, 1] and quantize `raw` into `input` (the input tensor's data), exactly as\n"
              "// the model was trained and measured.\n"
              f"void nas_preprocess(const unsigned char* raw, {ctype}* input);\n\n"
              "#ifdef __cplusplus\n}\n#endif\n\n#endif  // NAS_PREPROCESS_H_\n")
    defines = [f"#define NAS_HEIGHT {height}", f"#define NAS_WIDTH {width}", f"#define NAS_CHANNELS {channels}",
               f"#define NAS_SPAN {span}", f"#define NAS_INPUT_CTYPE {ctype}"]
    if low is None:
        defines.append("#define NAS_INPUT_FLOAT 1")
    else:
        defines += [f"#define NAS_PRE_SCALE {float(input_detail['scale'])!r}f",
                    f"#define NAS_PRE_ZERO_POINT {int(input_detail['zero_point'])}",
                    f"#define NAS_INPUT_MIN ({low})", f"#define NAS_INPUT_MAX ({high})"]
    source = ("// The model's preprocessing (generated by tinyml-nas), C99: see preprocess.h.\n"
              "#include \"preprocess.h\"\n\n#include <float.h>\n#include <math.h>\n#include <stddef.h>\n\n"
              + "\n".join(defines) + "\n" + _BODY)
    return {"preprocess.h": header, "preprocess.c": source}
