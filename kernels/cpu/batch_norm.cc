#include "kernels/cpu/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"

namespace kiln::kernels::cpu {

namespace {

constexpr int64_t kGrain = 4096;
// Row chunks fixed by the problem size alone; partials are combined in chunk order, so the
// statistics are bit-identical for any thread count.
constexpr int64_t kChunkElems = 16384;

int64_t chunk_rows(int64_t channels) { return std::max<int64_t>(1, kChunkElems / channels); }
int64_t row_grain(int64_t channels) { return std::max<int64_t>(1, kGrain / channels); }

// Per-channel sums over rows of f(r, c, x[r, c]) (value in double), as `out[c]` (size channels).
template <typename T, typename F>
void column_sums(int64_t rows, int64_t channels, const T* x, std::vector<double>& out, F f) {
  const int64_t cr = chunk_rows(channels);
  const int64_t chunks = std::max<int64_t>(1, (rows + cr - 1) / cr);
  std::vector<double> partial(static_cast<size_t>(chunks * channels), 0.0);
  parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t ch = cb; ch < ce; ++ch) {
      double* acc = partial.data() + ch * channels;
      const int64_t r1 = std::min(rows, (ch + 1) * cr);
      for (int64_t r = ch * cr; r < r1; ++r) {
        const T* row = x + r * channels;
        for (int64_t c = 0; c < channels; ++c) acc[c] += f(r, c, row[c]);
      }
    }
  });
  out.assign(static_cast<size_t>(channels), 0.0);
  for (int64_t ch = 0; ch < chunks; ++ch)
    for (int64_t c = 0; c < channels; ++c) out[c] += partial[ch * channels + c];
}

// y[r, c] = x[r, c] * scale[c] + shift[c].
template <typename T>
void affine(int64_t rows, int64_t channels, const T* x, const std::vector<T>& scale, const std::vector<T>& shift,
            T* y) {
  parallel_for(rows, row_grain(channels), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const T* xr = x + r * channels;
      T* yr = y + r * channels;
      for (int64_t c = 0; c < channels; ++c) yr[c] = xr[c] * scale[c] + shift[c];
    }
  });
}

}  // namespace

template <typename T>
void batch_norm_forward_training(const Stream& s, int64_t rows, int64_t channels, const T* x, const T* gamma,
                                 const T* beta, T eps, T momentum, T* y, T* save_mean, T* save_inv_std, T* running_mean,
                                 T* running_var) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(rows > 0 && channels > 0, "batch norm over ", rows, " rows, ", channels, " channels");
  std::vector<double> sum, sq;
  column_sums(rows, channels, x, sum, [](int64_t, int64_t, T v) { return static_cast<double>(v); });
  std::vector<double> mean(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) mean[c] = sum[c] / static_cast<double>(rows);
  // Two passes (mean, then squared deviations) avoid the cancellation of E[x^2] - E[x]^2.
  column_sums(rows, channels, x, sq, [&](int64_t, int64_t c, T v) {
    const double d = static_cast<double>(v) - mean[c];
    return d * d;
  });
  std::vector<T> scale(static_cast<size_t>(channels)), shift(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const double var = sq[c] / static_cast<double>(rows);
    const double inv_std = 1.0 / std::sqrt(var + static_cast<double>(eps));
    save_mean[c] = static_cast<T>(mean[c]);
    save_inv_std[c] = static_cast<T>(inv_std);
    const double g = gamma ? static_cast<double>(gamma[c]) : 1.0;
    const double b = beta ? static_cast<double>(beta[c]) : 0.0;
    scale[c] = static_cast<T>(g * inv_std);
    shift[c] = static_cast<T>(b - mean[c] * g * inv_std);
    if (running_mean) running_mean[c] = (T(1) - momentum) * running_mean[c] + momentum * static_cast<T>(mean[c]);
    if (running_var) {
      const double unbiased = rows > 1 ? sq[c] / static_cast<double>(rows - 1) : var;
      running_var[c] = (T(1) - momentum) * running_var[c] + momentum * static_cast<T>(unbiased);
    }
  }
  affine(rows, channels, x, scale, shift, y);
}

template <typename T>
void batch_norm_forward_inference(const Stream& s, int64_t rows, int64_t channels, const T* x, const T* gamma,
                                  const T* beta, const T* running_mean, const T* running_var, T eps, T* y) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(rows >= 0 && channels > 0);
  std::vector<T> scale(static_cast<size_t>(channels)), shift(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const double inv_std = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + static_cast<double>(eps));
    const double g = gamma ? static_cast<double>(gamma[c]) : 1.0;
    const double b = beta ? static_cast<double>(beta[c]) : 0.0;
    scale[c] = static_cast<T>(g * inv_std);
    shift[c] = static_cast<T>(b - static_cast<double>(running_mean[c]) * g * inv_std);
  }
  affine(rows, channels, x, scale, shift, y);
}

template <typename T>
void batch_norm_backward(const Stream& s, int64_t rows, int64_t channels, const T* x, const T* dy, const T* gamma,
                         const T* save_mean, const T* save_inv_std, T* dx, T* dgamma, T* dbeta) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(rows > 0 && channels > 0);
  // dbeta = sum dy, dgamma = sum dy * xhat, and
  // dx = gamma inv_std / N * (N dy - dbeta - xhat dgamma).
  std::vector<double> sum_dy, sum_dy_xhat;
  column_sums(rows, channels, dy, sum_dy, [](int64_t, int64_t, T v) { return static_cast<double>(v); });
  column_sums(rows, channels, dy, sum_dy_xhat, [&](int64_t r, int64_t c, T v) {
    const T xhat = (x[r * channels + c] - save_mean[c]) * save_inv_std[c];
    return static_cast<double>(v) * static_cast<double>(xhat);
  });
  const double n = static_cast<double>(rows);
  // dx = k1 dy + k2 (x - mean) + k3 per channel, with the sums folded into the constants.
  std::vector<T> k1(static_cast<size_t>(channels)), k2(static_cast<size_t>(channels)),
      k3(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const double g = gamma ? static_cast<double>(gamma[c]) : 1.0;
    const double inv = static_cast<double>(save_inv_std[c]);
    k1[c] = static_cast<T>(g * inv);
    k2[c] = static_cast<T>(-g * inv * inv * sum_dy_xhat[c] / n);
    k3[c] = static_cast<T>(-g * inv * sum_dy[c] / n);
  }
  parallel_for(rows, row_grain(channels), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const T* xr = x + r * channels;
      const T* dyr = dy + r * channels;
      T* dxr = dx + r * channels;
      for (int64_t c = 0; c < channels; ++c) dxr[c] = k1[c] * dyr[c] + k2[c] * (xr[c] - save_mean[c]) + k3[c];
    }
  });
  for (int64_t c = 0; c < channels; ++c) {
    if (dgamma) dgamma[c] += static_cast<T>(sum_dy_xhat[c]);
    if (dbeta) dbeta[c] += static_cast<T>(sum_dy[c]);
  }
}

KILN_BATCH_NORM_INSTANTIATE(float)
KILN_BATCH_NORM_INSTANTIATE(double)

}  // namespace kiln::kernels::cpu
