#include "kernels/cpu/pooling.h"

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "core/thread_pool.h"

namespace kiln::kernels::cpu {

namespace {

constexpr int64_t kGrain = 4096;

void check_shape(const Stream& s, const Pool2dShape& p) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(p.n >= 0 && p.h > 0 && p.w > 0 && p.c > 0 && p.kh > 0 && p.kw > 0 && p.stride_h > 0 && p.stride_w > 0 &&
                 p.pad_h >= 0 && p.pad_w >= 0 && p.out_h() > 0 && p.out_w() > 0,
             "bad pool shape");
  KILN_CHECK(p.h * p.w * p.c <= std::numeric_limits<int32_t>::max(), "image too large for int32 argmax");
}

// The window of output (oy, ox) clipped to the image: rows [y0, y1), cols [x0, x1).
struct Window {
  int64_t y0, y1, x0, x1;
};
Window window(const Pool2dShape& p, int64_t oy, int64_t ox) {
  const int64_t ys = oy * p.stride_h - p.pad_h, xs = ox * p.stride_w - p.pad_w;
  return {std::max<int64_t>(ys, 0), std::min(ys + p.kh, p.h), std::max<int64_t>(xs, 0), std::min(xs + p.kw, p.w)};
}

// Images per parallel chunk so a chunk covers about kGrain input elements.
int64_t image_grain(const Pool2dShape& p) { return std::max<int64_t>(1, kGrain / (p.h * p.w * p.c)); }

// Calls fn(image, o, window) for every output cell: `image` is its input image, `o` its offset in
// the output (and argmax), images split across the threads.
template <typename T, typename Fn>
void for_each_window(const Pool2dShape& p, const T* x, Fn fn) {
  const int64_t oh = p.out_h(), ow = p.out_w();
  parallel_for(p.n, image_grain(p), [&](int64_t nb, int64_t ne) {
    for (int64_t n = nb; n < ne; ++n) {
      const T* img = x + n * p.h * p.w * p.c;
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) fn(img, ((n * oh + oy) * ow + ox) * p.c, window(p, oy, ox));
    }
  });
}

// The maxima alone (inference: no gradient to route). The same values as the pass with argmax:
// the window's first cell seeds the max and strict > takes a later one, which compiles to vector
// max instructions (NaN handling included).
template <typename T>
void max_pool2d_values(const Pool2dShape& p, const T* x, T* y) {
  const int64_t c = p.c;
  for_each_window(p, x, [&](const T* img, int64_t o, const Window& win) {
    T* __restrict yo = y + o;
    if (win.y0 >= win.y1 || win.x0 >= win.x1) {
      std::fill(yo, yo + c, T(0));
      return;
    }
    const T* __restrict first = img + (win.y0 * p.w + win.x0) * c;
    for (int64_t ch = 0; ch < c; ++ch) yo[ch] = first[ch];
    for (int64_t iy = win.y0; iy < win.y1; ++iy)
      for (int64_t ix = iy == win.y0 ? win.x0 + 1 : win.x0; ix < win.x1; ++ix) {
        const T* __restrict xi = img + (iy * p.w + ix) * c;
        for (int64_t ch = 0; ch < c; ++ch) yo[ch] = xi[ch] > yo[ch] ? xi[ch] : yo[ch];
      }
  });
}

}  // namespace

template <typename T>
void max_pool2d_forward(const Stream& s, const Pool2dShape& p, const T* x, T* y, int32_t* argmax) {
  check_shape(s, p);
  const int64_t c = p.c;
  if (!argmax) return max_pool2d_values(p, x, y);
  for_each_window(p, x, [&](const T* img, int64_t o, const Window& win) {
    T* yo = y + o;
    int32_t* ao = argmax + o;
    if (win.y0 >= win.y1 || win.x0 >= win.x1) {
      // A window entirely in the padding: nothing to pool, no gradient to route.
      std::fill(yo, yo + c, T(0));
      std::fill(ao, ao + c, int32_t{-1});
      return;
    }
    std::fill(yo, yo + c, -std::numeric_limits<T>::infinity());
    std::fill(ao, ao + c, int32_t{-1});
    for (int64_t iy = win.y0; iy < win.y1; ++iy) {
      for (int64_t ix = win.x0; ix < win.x1; ++ix) {
        const int64_t base = (iy * p.w + ix) * c;
        const T* xi = img + base;
        // Strict > keeps the first maximum in scan order; ao < 0 takes the first cell even
        // when it holds -inf.
        for (int64_t ch = 0; ch < c; ++ch) {
          const bool take = xi[ch] > yo[ch] || ao[ch] < 0;
          yo[ch] = take ? xi[ch] : yo[ch];
          ao[ch] = take ? static_cast<int32_t>(base + ch) : ao[ch];
        }
      }
    }
  });
}

template <typename T>
void max_pool2d_backward(const Stream& s, const Pool2dShape& p, const T* dy, const int32_t* argmax, T* dx) {
  check_shape(s, p);
  const int64_t out_per_image = p.out_h() * p.out_w() * p.c, in_per_image = p.h * p.w * p.c;
  // Every argmax points inside its own image, so images are independent and each is scattered
  // serially: no races, fixed summation order.
  parallel_for(p.n, image_grain(p), [&](int64_t nb, int64_t ne) {
    for (int64_t n = nb; n < ne; ++n) {
      T* dxi = dx + n * in_per_image;
      std::fill(dxi, dxi + in_per_image, T(0));
      const T* dyi = dy + n * out_per_image;
      const int32_t* ai = argmax + n * out_per_image;
      for (int64_t o = 0; o < out_per_image; ++o) {
        if (ai[o] >= 0) dxi[ai[o]] += dyi[o];
      }
    }
  });
}

template <typename T>
void avg_pool2d_forward(const Stream& s, const Pool2dShape& p, const T* x, T* y) {
  check_shape(s, p);
  const int64_t c = p.c;
  for_each_window(p, x, [&](const T* img, int64_t o, const Window& win) {
    T* yo = y + o;
    std::fill(yo, yo + c, T(0));
    for (int64_t iy = win.y0; iy < win.y1; ++iy) {
      for (int64_t ix = win.x0; ix < win.x1; ++ix) {
        const T* xi = img + (iy * p.w + ix) * c;
        for (int64_t ch = 0; ch < c; ++ch) yo[ch] += xi[ch];
      }
    }
    // Padding cells are not counted.
    const int64_t cells = std::max<int64_t>(0, win.y1 - win.y0) * std::max<int64_t>(0, win.x1 - win.x0);
    if (cells > 0) {
      const T cnt = static_cast<T>(cells);
      for (int64_t ch = 0; ch < c; ++ch) yo[ch] /= cnt;
    }
  });
}

template <typename T>
void avg_pool2d_backward(const Stream& s, const Pool2dShape& p, const T* dy, T* dx) {
  check_shape(s, p);
  const int64_t oh = p.out_h(), ow = p.out_w(), c = p.c;
  parallel_for(p.n, image_grain(p), [&](int64_t nb, int64_t ne) {
    for (int64_t n = nb; n < ne; ++n) {
      T* dxi = dx + n * p.h * p.w * c;
      std::fill(dxi, dxi + p.h * p.w * c, T(0));
      for (int64_t oy = 0; oy < oh; ++oy) {
        for (int64_t ox = 0; ox < ow; ++ox) {
          const T* g = dy + ((n * oh + oy) * ow + ox) * c;
          const Window win = window(p, oy, ox);
          const int64_t cells = std::max<int64_t>(0, win.y1 - win.y0) * std::max<int64_t>(0, win.x1 - win.x0);
          if (cells == 0) continue;
          const T cnt = static_cast<T>(cells);
          for (int64_t iy = win.y0; iy < win.y1; ++iy) {
            for (int64_t ix = win.x0; ix < win.x1; ++ix) {
              T* d = dxi + (iy * p.w + ix) * c;
              for (int64_t ch = 0; ch < c; ++ch) d[ch] += g[ch] / cnt;
            }
          }
        }
      }
    }
  });
}

template <typename T>
void global_avg_pool_forward(const Stream& s, int64_t n, int64_t hw, int64_t c, const T* x, T* y) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(n >= 0 && hw > 0 && c > 0);
  parallel_for(n, std::max<int64_t>(1, kGrain / (hw * c)), [&](int64_t nb, int64_t ne) {
    for (int64_t b = nb; b < ne; ++b) {
      T* yo = y + b * c;
      std::fill(yo, yo + c, T(0));
      for (int64_t i = 0; i < hw; ++i) {
        const T* xi = x + (b * hw + i) * c;
        for (int64_t ch = 0; ch < c; ++ch) yo[ch] += xi[ch];
      }
      const T cnt = static_cast<T>(hw);
      for (int64_t ch = 0; ch < c; ++ch) yo[ch] /= cnt;
    }
  });
}

template <typename T>
void global_avg_pool_backward(const Stream& s, int64_t n, int64_t hw, int64_t c, const T* dy, T* dx) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(n >= 0 && hw > 0 && c > 0);
  parallel_for(n, std::max<int64_t>(1, kGrain / (hw * c)), [&](int64_t nb, int64_t ne) {
    for (int64_t b = nb; b < ne; ++b) {
      const T cnt = static_cast<T>(hw);
      for (int64_t i = 0; i < hw; ++i) {
        T* d = dx + (b * hw + i) * c;
        for (int64_t ch = 0; ch < c; ++ch) d[ch] = dy[b * c + ch] / cnt;
      }
    }
  });
}

KILN_POOLING_INSTANTIATE(float)
KILN_POOLING_INSTANTIATE(double)

}  // namespace kiln::kernels::cpu
