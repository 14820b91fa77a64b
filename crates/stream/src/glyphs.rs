//! Text for the figures, placed glyph by glyph where the font says.
//!
//! plotters 0.3.7's `ab_glyph` text renderer (the one that needs no system
//! font) draws each glyph's pixels from the left edge of the glyph's ink
//! instead of from its origin: it drops the left side bearing. Letters
//! with a wide bearing ("l", "i") then sit too far left and those with a
//! negative one ("j") too far right, and words come apart ("fil es",
//! "in jection"). [`Glyphs`] wraps a backend and draws text itself with
//! the same font, the same size and the same box as plotters measures
//! (so that layout does not move), each glyph at origin + bearing; every
//! other drawing call goes to the wrapped backend unchanged.

use ab_glyph::{Font, FontRef, ScaleFont};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

/// A drawing backend whose text is drawn with `font`.
pub struct Glyphs<B> {
    inner: B,
    font: FontRef<'static>,
}

impl<B> Glyphs<B> {
    /// Wraps `inner`; `font` is the one registered with plotters, so that
    /// plotters' measurements of text hold for what is drawn here.
    pub fn new(inner: B, font: &'static [u8]) -> Self {
        let font = FontRef::try_from_slice(font).expect("the bundled font is a valid font");
        Glyphs { inner, font }
    }
}

impl<B: DrawingBackend> DrawingBackend for Glyphs<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        self.inner.estimate_text_size(text, style)
    }

    /// As plotters' default `draw_text` (anchor, rotation, clipping to the
    /// image), with the glyphs placed at origin + left side bearing.
    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let ((min_x, min_y), (max_x, max_y)) = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let (w, h) = self.get_size();
        let size = style.size() as f32;
        let font = self.font.clone();
        let font = font.as_scaled(size);
        let mut pen = 0f32;
        let mut previous = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                pen += font.kern(p, id);
            }
            previous = Some(id);
            if let Some(outline) = font.outline_glyph(id.with_scale(size)) {
                let ink = outline.px_bounds();
                // The same vertical placement as plotters' renderer, so
                // that text sits where its measured box says.
                let top = (size / 2.0 + ink.min.y) as i32;
                let left = (pen + ink.min.x).round() as i32;
                let mut pixels = Vec::new();
                outline.draw(|x, y, coverage| {
                    pixels.push((x as i32 + left, y as i32 + top, coverage))
                });
                for (x, y, coverage) in pixels {
                    let (x, y) = transform.transform(x + dx - min_x, y + dy - min_y);
                    let (x, y) = (pos.0 + x, pos.1 + y);
                    if x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                        let alpha = color.alpha * f64::from(coverage);
                        self.inner.draw_pixel(
                            (x, y),
                            BackendColor {
                                alpha,
                                rgb: color.rgb,
                            },
                        )?;
                    }
                }
            }
            pen += font.h_advance(id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;

    const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

    /// The leftmost column with ink of `text` drawn at x = 0 in black.
    fn first_ink(text: &str, fixed: bool) -> usize {
        crate::plot::register_font();
        let (w, h) = (200u32, 60u32);
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let style = TextStyle::from(("sans-serif", 40).into_font()).color(&BLACK);
            let bitmap = BitMapBackend::with_buffer(&mut buf, (w, h));
            if fixed {
                let area = Glyphs::new(bitmap, FONT).into_drawing_area();
                area.draw_text(text, &style, (0, 10)).unwrap();
                area.present().unwrap();
            } else {
                let area = bitmap.into_drawing_area();
                area.draw_text(text, &style, (0, 10)).unwrap();
                area.present().unwrap();
            }
        }
        (0..w as usize)
            .find(|&x| (0..h as usize).any(|y| buf[(y * w as usize + x) * 3] < 128))
            .unwrap()
    }

    #[test]
    fn a_glyph_starts_at_its_left_side_bearing() {
        // DejaVu Sans's "l" has a left side bearing of ~0.09 em: 3-4 px at
        // 40 px. plotters' own renderer drew it at 0.
        let font = FontRef::try_from_slice(FONT).unwrap();
        let font = font.as_scaled(40.0);
        let bearing = font.h_side_bearing(font.glyph_id('l')).round() as usize;
        assert!(bearing >= 2, "{bearing}");
        assert_eq!(first_ink("l", true), bearing);
        assert_eq!(
            first_ink("l", false),
            0,
            "plotters fixed its renderer: drop Glyphs"
        );
    }
}
