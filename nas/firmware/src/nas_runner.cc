// Runs one .tflite on the Arm build of TFLite Micro under emulation, for tinyml-nas.
//
// Files in the working directory (semihosting): model.tflite and input.bin (every input tensor's
// bytes, in order; zeros without it) are read; output.bin (every output tensor's bytes) and result.txt are written.
// Interpreters run the model, each invoked twice so that the counted invoke is a warm one: the
// first has no profiler, as firmware runs it (the whole invoke between nas_begin() and nas_end(),
// and the stack from allocation on); the second marks each operator through TFLite Micro's
// profiler interface. Both run in the arena arena.txt gives, where there is one: an arena too small
// can crash TFLite Micro rather than fail, so sizes are proven one run at a time. The instruction
// counter (an emulator plugin) records its running count whenever nas_begin() or nas_end() is entered.
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include <unistd.h>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/micro/tools/benchmarking/op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

#ifndef NAS_MODEL_MAX
#define NAS_MODEL_MAX (16u << 20)
#endif
#ifndef NAS_ARENA_MAX
#define NAS_ARENA_MAX (32u << 20)
#endif
#define NAS_STACK_PAINT (256u << 10)
#define NAS_STACK_WORD 0xA5A5A5A5u
#define NAS_MAX_EVENTS 4096

extern "C" {
volatile uint32_t nas_marks;
// Distinct bodies, so that the compiler cannot fold one marker into the other.
__attribute__((noinline, used)) void nas_begin(void) { nas_marks = nas_marks + 1u; }
__attribute__((noinline, used)) void nas_end(void) { nas_marks = nas_marks + 3u; }
}

namespace {
FILE* g_result = nullptr;
}  // namespace

// A failed check in TFLite Micro logs "HALTED" and spins forever (TFLITE_ABORT on a
// microcontroller build): this log reports it and ends the run instead, as abort() does.
extern "C" void abort(void) {
  if (g_result != nullptr) {
    fprintf(g_result, "error TFLite Micro halted: a kernel's parameter check failed (its log says which)\n");
    fclose(g_result);
  }
  _exit(3);
}

extern "C" void DebugLog(const char* format, va_list args) {
  vfprintf(stderr, format, args);
  if (strcmp(format, "HALTED") == 0) abort();
}

extern "C" int DebugVsnprintf(char* buffer, size_t buf_size, const char* format, va_list vlist) {
  return vsnprintf(buffer, buf_size, format, vlist);
}

namespace {

alignas(16) uint8_t g_model[NAS_MODEL_MAX];
alignas(16) uint8_t g_arena[NAS_ARENA_MAX];

// Marks each operator for the counter, and notes its name and nesting depth (an operator of a
// subgraph that IF or WHILE runs is inside its caller). Past NAS_MAX_EVENTS nothing is marked, so
// the marks and the names stay paired.
class Marks : public tflite::MicroProfilerInterface {
 public:
  uint32_t BeginEvent(const char* tag) override {
    if (!on) return 0;
    const uint32_t handle = static_cast<uint32_t>(n++);
    if (handle < NAS_MAX_EVENTS) {
      tags[handle] = tag;
      depth_at[handle] = depth;
      nas_begin();
    }
    ++depth;
    return handle;
  }
  void EndEvent(uint32_t handle) override {
    if (!on) return;
    --depth;
    if (handle < NAS_MAX_EVENTS) nas_end();
  }
  bool on = false;
  int n = 0;
  int depth = 0;
  const char* tags[NAS_MAX_EVENTS];
  int depth_at[NAS_MAX_EVENTS];
};

int Fail(FILE* result, const char* why) {
  fprintf(result, "error %s\n", why);
  fclose(result);
  return 1;
}

uint32_t StackPointer() {
  uint32_t sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  return sp;
}

// A leaf that touches no stack of its own (volatile stores: no memset call), so it can paint up to
// the caller's stack pointer.
__attribute__((noinline)) void PaintStack(uint32_t top) {
  for (volatile uint32_t* p = reinterpret_cast<uint32_t*>(top - NAS_STACK_PAINT);
       p < reinterpret_cast<uint32_t*>(top - 8u); ++p) {
    *p = NAS_STACK_WORD;
  }
}

// Bytes below `top` written since PaintStack(top); NAS_STACK_PAINT if even the deepest word was.
uint32_t StackUsed(uint32_t top) {
  const uint32_t* p = reinterpret_cast<const uint32_t*>(top - NAS_STACK_PAINT);
  while (reinterpret_cast<uint32_t>(p) < top - 8u && *p == NAS_STACK_WORD) ++p;
  return top - reinterpret_cast<uint32_t>(p);
}

// input.bin, or zeros where there is none (a model whose input the host could not describe).
TfLiteStatus ReadInputs(tflite::MicroInterpreter& interpreter) {
  FILE* f = fopen("input.bin", "rb");
  if (f == nullptr) {
    for (size_t i = 0; i < interpreter.inputs_size(); ++i) {
      memset(interpreter.input(i)->data.raw, 0, interpreter.input(i)->bytes);
    }
    return kTfLiteOk;
  }
  for (size_t i = 0; i < interpreter.inputs_size(); ++i) {  // inputs the file does not reach are zeros
    TfLiteTensor* t = interpreter.input(i);
    size_t got = fread(t->data.raw, 1, t->bytes, f);
    memset(t->data.raw + got, 0, t->bytes - got);
  }
  fclose(f);
  return kTfLiteOk;
}

const char* Prepare(tflite::MicroInterpreter& interpreter) {
  if (interpreter.AllocateTensors() != kTfLiteOk) return "AllocateTensors failed";
  if (ReadInputs(interpreter) != kTfLiteOk) return "cannot read input.bin";
  if (interpreter.Invoke() != kTfLiteOk) return "Invoke failed";  // the first invoke sets up lazily
  // The counted invoke starts from the same input: the first may have written over it.
  if (ReadInputs(interpreter) != kTfLiteOk) return "cannot read input.bin";
  return nullptr;
}

}  // namespace

int main() {
  FILE* result = fopen("result.txt", "w");
  if (result == nullptr) return 2;
  g_result = result;
  FILE* f = fopen("model.tflite", "rb");
  if (f == nullptr) return Fail(result, "cannot open model.tflite");
  size_t model_bytes = fread(g_model, 1, sizeof(g_model), f);
  fclose(f);
  if (model_bytes == 0 || model_bytes == sizeof(g_model)) return Fail(result, "model.tflite is empty or too large");
  const tflite::Model* model = tflite::GetModel(g_model);
  static tflite::TflmOpResolver resolver;
  if (tflite::CreateOpResolver(resolver) != kTfLiteOk) return Fail(result, "op resolver");

  // arena.txt, where given, is the arena to run in (to prove a size firmware will use); else all of it
  uint32_t arena = sizeof(g_arena);
  f = fopen("arena.txt", "r");
  if (f != nullptr) {
    unsigned limit = 0;
    if (fscanf(f, "%u", &limit) != 1 || limit == 0 || limit > sizeof(g_arena)) return Fail(result, "bad arena.txt");
    arena = limit;
    fclose(f);
  }
  const uint32_t top = StackPointer();
  PaintStack(top);  // before the interpreter exists: allocation and invokes count
  {  // the whole invoke, as firmware runs it: no profiler
    tflite::MicroInterpreter interpreter(model, resolver, g_arena, arena);
    const char* why = Prepare(interpreter);
    if (why != nullptr) return Fail(result, why);
    fprintf(result, "arena_used %u\n", static_cast<unsigned>(interpreter.arena_used_bytes()));
    nas_begin();
    TfLiteStatus status = interpreter.Invoke();
    nas_end();
    if (status != kTfLiteOk) return Fail(result, "Invoke failed");
    f = fopen("output.bin", "wb");
    if (f == nullptr) return Fail(result, "cannot write output.bin");
    for (size_t i = 0; i < interpreter.outputs_size(); ++i) {
      const TfLiteTensor* t = interpreter.output(i);
      fwrite(t->data.raw, 1, t->bytes, f);
    }
    fclose(f);
  }
  const uint32_t stack = StackUsed(top);
  fprintf(result, "stack %u\n", static_cast<unsigned>(stack));
  if (stack >= NAS_STACK_PAINT) fprintf(result, "stack_overflowed_paint 1\n");
  {  // each operator, through the profiler interface
    static Marks marks;
    tflite::MicroInterpreter interpreter(model, resolver, g_arena, arena, nullptr, &marks);
    const char* why = Prepare(interpreter);
    if (why != nullptr) return Fail(result, why);
    marks.on = true;
    TfLiteStatus status = interpreter.Invoke();
    marks.on = false;
    if (status != kTfLiteOk) return Fail(result, "Invoke failed");
    for (int i = 0; i < marks.n && i < NAS_MAX_EVENTS; ++i) fprintf(result, "op %d %s\n", marks.depth_at[i], marks.tags[i]);
    fprintf(result, "events %d\n", marks.n);
  }
  fprintf(result, "ok\n");
  fclose(result);
  return 0;
}
