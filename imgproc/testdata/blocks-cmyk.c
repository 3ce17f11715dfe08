/* Writes the 48x32 blocks test pattern ("ABC", "DEF", 16x16 blocks) as a
 * 4-component JPEG with libjpeg: blocks-cmyk cmyk|ycck OUT. The components hold
 * Adobe-inverted CMYK (255 - ink), as Photoshop writes them and image/jpeg reads
 * them; libjpeg adds the Adobe APP14 marker (transform 0 for CMYK, 2 for YCCK).
 *   gcc -O2 -o blocks-cmyk blocks-cmyk.c -ljpeg */
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>

static const unsigned char colors[6][3] = {
	{230, 30, 30}, {30, 200, 30}, {30, 30, 230}, {230, 230, 30}, {200, 30, 200}, {30, 200, 200},
};

int main(int argc, char **argv) {
	if (argc != 3) return 2;
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr e;
	c.err = jpeg_std_error(&e);
	jpeg_create_compress(&c);
	FILE *f = fopen(argv[2], "wb");
	if (!f) return 1;
	jpeg_stdio_dest(&c, f);
	c.image_width = 48;
	c.image_height = 32;
	c.input_components = 4;
	c.in_color_space = JCS_CMYK;
	jpeg_set_defaults(&c);
	jpeg_set_colorspace(&c, strcmp(argv[1], "ycck") == 0 ? JCS_YCCK : JCS_CMYK);
	jpeg_set_quality(&c, 95, TRUE);
	jpeg_start_compress(&c, TRUE);
	unsigned char row[48 * 4];
	for (int y = 0; y < 32; y++) {
		for (int x = 0; x < 48; x++) {
			const unsigned char *rgb = colors[(y / 16) * 3 + x / 16];
			int w = rgb[0] > rgb[1] ? rgb[0] : rgb[1];
			w = w > rgb[2] ? w : rgb[2];
			for (int i = 0; i < 3; i++) row[4 * x + i] = 255 - (w - rgb[i]) * 255 / w;
			row[4 * x + 3] = w; /* 255 - k, k = 255 - w */
		}
		JSAMPROW p = row;
		jpeg_write_scanlines(&c, &p, 1);
	}
	jpeg_finish_compress(&c);
	fclose(f);
	jpeg_destroy_compress(&c);
	return 0;
}
