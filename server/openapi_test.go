package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/captioner/captioner/config"
)

// spec is the part of an OpenAPI 3 document the tests check.
type spec struct {
	OpenAPI    string                          `json:"openapi"`
	Paths      map[string]map[string]operation `json:"paths"`
	Components struct {
		Schemas   map[string]*schema `json:"schemas"`
		Responses map[string]struct {
			Content map[string]struct {
				Schema *schema `json:"schema"`
			} `json:"content"`
		} `json:"responses"`
	} `json:"components"`
}

type operation struct {
	Parameters []struct {
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
	RequestBody struct {
		Content map[string]struct {
			Schema *schema `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Ref     string `json:"$ref"`
		Content map[string]struct {
			Schema *schema `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
}

type schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Properties map[string]*schema `json:"properties"`
	Required   []string           `json:"required"`
	Items      *schema            `json:"items"`
	Enum       []any              `json:"enum"`
	OneOf      []*schema          `json:"oneOf"`
	// AdditionalProperties is false (closed object), a schema (a map), or absent.
	AdditionalProperties json.RawMessage `json:"additionalProperties"`
}

func loadSpec(t *testing.T) *spec {
	t.Helper()
	var sp spec
	dec := json.NewDecoder(bytes.NewReader(openAPISpec))
	if err := dec.Decode(&sp); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(sp.OpenAPI, "3.") {
		t.Fatalf("openapi version %q, want 3.x", sp.OpenAPI)
	}
	return &sp
}

// ginToOpenAPI turns /static/*file and /x/:id into /static/{file} and /x/{id}.
var ginParam = regexp.MustCompile(`[:*]([A-Za-z_]+)`)

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	sp := loadSpec(t)
	s := New(testConfig(t, nil), captionLoader(t), discardLog())
	routes := map[string]bool{}
	for _, r := range s.router.Routes() {
		path := ginParam.ReplaceAllString(r.Path, "{$1}")
		key := strings.ToLower(r.Method) + " " + path
		routes[key] = true
		method := strings.ToLower(r.Method)
		if method == "head" { // GET without the body (HTTP): documented with the GET
			method = "get"
		}
		if _, ok := sp.Paths[path][method]; !ok {
			t.Errorf("route %s %s is not in openapi.json", r.Method, path)
		}
	}
	for path, ops := range sp.Paths {
		for method := range ops {
			if !routes[method+" "+path] {
				t.Errorf("openapi.json documents %s %s, which the router does not have", strings.ToUpper(method), path)
			}
		}
	}
}

// Every option a request may set (optionFields) is documented as a query
// parameter and as a multipart field (beside image) of POST /v1/captions, and
// nothing else is.
func TestOpenAPIDocumentsEveryOption(t *testing.T) {
	op := loadSpec(t).Paths["/v1/captions"]["post"]
	var query []string
	for _, p := range op.Parameters {
		if p.In == "query" {
			query = append(query, p.Name)
		}
	}
	form := slices.Collect(maps.Keys(op.RequestBody.Content["multipart/form-data"].Schema.Properties))
	want := slices.Sorted(slices.Values(optionFields))
	if slices.Sort(query); !slices.Equal(query, want) {
		t.Errorf("query parameters %q, want the options %q", query, want)
	}
	if slices.Sort(form); !slices.Equal(form, slices.Sorted(slices.Values(append([]string{"image"}, optionFields...)))) {
		t.Errorf("multipart fields %q, want image and the options %q", form, want)
	}
}

func (sp *spec) resolve(t *testing.T, s *schema) *schema {
	for s != nil && s.Ref != "" {
		name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
		s = sp.Components.Schemas[name]
		if s == nil {
			t.Fatalf("dangling $ref %s", name)
		}
	}
	return s
}

// validate checks v against s: types, required fields, and no undocumented fields
// in closed objects. It returns the problems found, each with its JSON path.
func (sp *spec) validate(t *testing.T, s *schema, v any, path string) []string {
	s = sp.resolve(t, s)
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	if len(s.OneOf) > 0 {
		var all []string
		matches := 0
		for _, alt := range s.OneOf {
			e := sp.validate(t, alt, v, path)
			if len(e) == 0 {
				matches++
			}
			all = append(all, e...)
		}
		switch matches {
		case 0:
			return append([]string{path + ": matches none of oneOf:"}, all...)
		case 1:
			return nil
		}
		bad("matches %d of oneOf, want exactly 1", matches)
		return errs
	}
	switch s.Type {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			bad("%T, want an object", v)
			return errs
		}
		for _, r := range s.Required {
			if _, ok := obj[r]; !ok {
				bad("missing required field %q", r)
			}
		}
		closed := string(s.AdditionalProperties) == "false"
		var extra *schema
		if len(s.AdditionalProperties) > 0 && !closed {
			extra = &schema{}
			json.Unmarshal(s.AdditionalProperties, extra)
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch p, ok := s.Properties[k]; {
			case ok:
				errs = append(errs, sp.validate(t, p, obj[k], path+"."+k)...)
			case extra != nil:
				errs = append(errs, sp.validate(t, extra, obj[k], path+"."+k)...)
			case closed:
				bad("field %q is not documented", k)
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			bad("%T, want an array", v)
			return errs
		}
		for i, e := range arr {
			errs = append(errs, sp.validate(t, s.Items, e, path+"["+strconv.Itoa(i)+"]")...)
		}
	case "string":
		if _, ok := v.(string); !ok {
			bad("%T, want a string", v)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			bad("%T, want a number", v)
		}
	case "integer":
		if f, ok := v.(float64); !ok || f != float64(int64(f)) {
			bad("%v, want an integer", v)
		}
	}
	if len(s.Enum) > 0 {
		found := false
		for _, e := range s.Enum {
			found = found || e == v
		}
		if !found {
			bad("%v is not one of %v", v, s.Enum)
		}
	}
	return errs
}

// responseSchema is the documented JSON schema of path/method/status.
func (sp *spec) responseSchema(t *testing.T, path, method string, status int) *schema {
	t.Helper()
	op, ok := sp.Paths[path][method]
	if !ok {
		t.Fatalf("%s %s is not documented", method, path)
	}
	r, ok := op.Responses[strconv.Itoa(status)]
	if !ok {
		t.Fatalf("%s %s: status %d is not documented", method, path, status)
	}
	content := r.Content
	if r.Ref != "" {
		content = sp.Components.Responses[strings.TrimPrefix(r.Ref, "#/components/responses/")].Content
	}
	c, ok := content["application/json"]
	if !ok {
		t.Fatalf("%s %s %d has no application/json schema", method, path, status)
	}
	return c.Schema
}

func TestResponsesMatchOpenAPI(t *testing.T) {
	sp := loadSpec(t)
	ts := startServer(t, testConfig(t, func(c *config.Config) { c.Server.MaxImages = 2 }), captionLoader(t))
	img := photoPNG(64, 48)
	two, ct2 := multipartBody(t, part{"image", "a.png", img}, part{"image", "b.png", img})
	oneBad, ctBad := multipartBody(t, part{"image", "a.png", img}, part{"image", "b.png", img[:40]})
	three, ct3 := multipartBody(t, part{"image", "a", img}, part{"image", "b", img}, part{"image", "c", img})
	allBad, ctAllBad := multipartBody(t, part{"image", "a.png", img[:40]}, part{"image", "b.png", []byte("not a png")})
	lone, err := os.ReadFile("../testdata/ood/tool_screwdriver1.jpg") // a caption with lone_object
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path, ct string
		body             []byte
		status           int
	}{
		{"get", "/healthz", "", nil, 200},
		{"get", "/readyz", "", nil, 200},
		{"get", "/v1/models", "", nil, 200},
		{"post", "/v1/captions", "image/png", img, 200},
		{"post", "/v1/captions", "image/jpeg", lone, 200},
		{"post", "/v1/captions", ct2, readAll(two), 200},
		{"post", "/v1/captions", ctBad, readAll(oneBad), 200},
		{"post", "/v1/captions", ct3, readAll(three), 413},
		{"post", "/v1/captions", "image/png", []byte("not a png"), 415},
		{"post", "/v1/captions", "image/png", img[:40], 400},
		{"post", "/v1/captions", ctAllBad, readAll(allBad), 400},
		{"post", "/admin/reload", "", nil, 200},
		{"post", "/admin/reload", "text/plain", []byte("reload"), 415},
	} {
		r := do(t, strings.ToUpper(tc.method), ts.url+tc.path, tc.ct, bytes.NewReader(tc.body))
		if r.status != tc.status {
			t.Errorf("%s %s: status %d, want %d: %s", tc.method, tc.path, r.status, tc.status, r.body)
			continue
		}
		var v any
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Errorf("%s %s: %v", tc.method, tc.path, err)
			continue
		}
		for _, e := range sp.validate(t, sp.responseSchema(t, tc.path, tc.method, tc.status), v, "$") {
			t.Errorf("%s %s %d: %s", tc.method, tc.path, tc.status, e)
		}
	}
	if r := do(t, "GET", ts.url+"/openapi.json", "", nil); r.status != 200 || !bytes.Equal(r.body, openAPISpec) {
		t.Errorf("/openapi.json: %d, %d bytes, want the embedded document", r.status, len(r.body))
	}
}

// TestValidatorCatchesDrift makes sure the schema check above can fail.
func TestValidatorCatchesDrift(t *testing.T) {
	sp := loadSpec(t)
	s := sp.responseSchema(t, "/v1/models", "get", http.StatusOK)
	var v any
	json.Unmarshal([]byte(`{"models":[{"name":"m","version":"1","encoder":"e","device":"d","vocab_size":1.5,"scores":{"bleu4":"x"},"extra":1}]}`), &v)
	got := strings.Join(sp.validate(t, s, v, "$"), "\n")
	for _, want := range []string{
		"$.models[0].vocab_size: 1.5, want an integer",
		"$.models[0].scores.bleu4: string, want a number",
		`$.models[0]: field "extra" is not documented`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("validator output lacks %q:\n%s", want, got)
		}
	}
	// A captions entry must be a caption or an image error, not a mix.
	json.Unmarshal([]byte(`{"captions":[{"index":0,"filename":"a","status":400,"error":"bad","caption":"x"}]}`), &v)
	got = strings.Join(sp.validate(t, sp.responseSchema(t, "/v1/captions", "post", http.StatusOK), v, "$"), "\n")
	if !strings.Contains(got, "$.captions[0]: matches none of oneOf") || !strings.Contains(got, `field "caption" is not documented`) {
		t.Errorf("validator accepted a mixed entry:\n%s", got)
	}
}

func readAll(r interface{ Read([]byte) (int, error) }) []byte {
	var b bytes.Buffer
	b.ReadFrom(r)
	return b.Bytes()
}

// openAPI30Schema is every field of an OpenAPI 3.0 Schema Object: the
// document says 3.0.3, and generators refuse one that uses a keyword of a
// later JSON Schema ("const" had kept it from validating).
var openAPI30Schema = strings.Fields(`title multipleOf maximum exclusiveMaximum minimum exclusiveMinimum
	maxLength minLength pattern maxItems minItems uniqueItems maxProperties minProperties required enum
	type allOf oneOf anyOf not items properties additionalProperties description format default
	nullable discriminator readOnly writeOnly xml externalDocs example deprecated $ref`)

// TestOpenAPISchemasAre30: every schema in the document, however deep, uses
// OpenAPI 3.0's fields alone (or x- extensions).
func TestOpenAPISchemasAre30(t *testing.T) {
	var doc any
	if err := json.Unmarshal(openAPISpec, &doc); err != nil {
		t.Fatal(err)
	}
	checked := 0
	var walk func(v any, path string, isSchema bool)
	walk = func(v any, path string, isSchema bool) {
		switch v := v.(type) {
		case []any:
			for i, e := range v {
				walk(e, fmt.Sprintf("%s[%d]", path, i), isSchema)
			}
		case map[string]any:
			if isSchema {
				checked++
				for k := range v {
					if !slices.Contains(openAPI30Schema, k) && !strings.HasPrefix(k, "x-") {
						t.Errorf("%s: %q is no OpenAPI 3.0 schema field", path, k)
					}
				}
			}
			for k, e := range v {
				switch {
				case isSchema && (k == "properties"):
					for name, p := range e.(map[string]any) {
						walk(p, path+".properties."+name, true)
					}
				case isSchema && (k == "items" || k == "not" || k == "allOf" || k == "oneOf" || k == "anyOf" || k == "additionalProperties"):
					walk(e, path+"."+k, true)
				case !isSchema && k == "schema":
					walk(e, path+".schema", true)
				case !isSchema && path == "$.components.schemas":
					walk(e, path+"."+k, true)
				case !isSchema:
					walk(e, path+"."+k, false)
				}
			}
		}
	}
	walk(doc, "$", false)
	if checked < 50 {
		t.Errorf("checked %d schemas: the walk misses most of the document", checked)
	}
}
