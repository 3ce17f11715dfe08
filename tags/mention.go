package tags

// Captioned is a photo's caption beside the encoder's tags for it.
type Captioned struct {
	Caption string
	Tags    []Tag // Select's result, most probable first
}

// MentionRate counts how often captions name what the encoder is sure of:
// eligible is the number of photos whose top tag has Prob >= threshold, and
// mentioned how many of their captions name that tag's noun (Mentions).
// The rate is mentioned/eligible.
func MentionRate(photos []Captioned, threshold float32) (mentioned, eligible int) {
	for _, p := range photos {
		if len(p.Tags) == 0 || p.Tags[0].Prob < threshold {
			continue
		}
		eligible++
		if Mentions(p.Caption, p.Tags[0].Noun) {
			mentioned++
		}
	}
	return mentioned, eligible
}
