#pragma once
// A small RGB raster with the drawing the study plot needs (lines, dots, 5x7 bitmap text) and a
// PNG encoder (zlib for the IDAT stream and the chunk CRCs), so --report needs no Python.
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::tuning {

struct Rgb {
  uint8_t r, g, b;
};

class RgbImage {
 public:
  RgbImage(int width, int height, Rgb background);
  int width() const { return w_; }
  int height() const { return h_; }

  void set(int x, int y, Rgb c);
  Rgb get(int x, int y) const;
  void line(double x0, double y0, double x1, double y1, Rgb c, int thickness = 1);
  void fill_rect(int x0, int y0, int x1, int y1, Rgb c);
  void dot(double x, double y, int radius, Rgb c, bool filled = true);
  void cross(double x, double y, int radius, Rgb c);
  // Text in a 5x7 bitmap font (upper case, digits, common punctuation; lower case is drawn as
  // upper case), `scale` pixels per font pixel. (x, y) is the top left corner.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 1);
  static int text_width(const std::string& s, int scale = 1) { return static_cast<int>(s.size()) * 6 * scale; }
  // Text rotated 90 degrees counter-clockwise (for a y-axis label); (x, y) is the bottom left.
  void text_vertical(int x, int y, const std::string& s, Rgb c, int scale = 1);

  // The PNG file's bytes (8-bit RGB, no interlace).
  std::string encode_png() const;

 private:
  int w_, h_;
  std::vector<uint8_t> pixels_;
};

}  // namespace kiln::tuning
