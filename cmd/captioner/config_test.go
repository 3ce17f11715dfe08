package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// `captioner config` prints values as the program reads them: an environment
// variable's number as a number, its comma-separated list as a list, a
// duration as a file would write it. It printed them as the strings they came
// as ("3", "a,b") before.
//
// The keys are ones no command has a flag for: the tests share rootCmd, and a
// flag another test set would win over the environment.
func TestConfigPrintsDecodedValues(t *testing.T) {
	t.Setenv("CAPTIONER_DECODE_NO_REPEAT", "3")
	t.Setenv("CAPTIONER_SERVER_ALLOWED_HOSTS", "a.example,b.example")
	t.Setenv("CAPTIONER_SERVER_IDLE_TIMEOUT", "90s")
	out, err := run(t, "config")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Decode struct {
			NoRepeat any `yaml:"no_repeat"`
		}
		Server struct {
			AllowedHosts  any `yaml:"allowed_hosts"`
			IdleTimeout   any `yaml:"idle_timeout"`
			ShutdownGrace any `yaml:"shutdown_grace"`
		}
	}
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("config printed no YAML: %v\n%s", err, out)
	}
	if got.Decode.NoRepeat != 3 {
		t.Errorf("decode.no_repeat printed as %#v, want the number 3", got.Decode.NoRepeat)
	}
	if want := []any{"a.example", "b.example"}; !reflect.DeepEqual(got.Server.AllowedHosts, want) {
		t.Errorf("server.allowed_hosts printed as %#v, want the list %v", got.Server.AllowedHosts, want)
	}
	if got.Server.IdleTimeout != "1m30s" || got.Server.ShutdownGrace != "30s" {
		t.Errorf("durations printed as %#v and %#v, want 1m30s and 30s", got.Server.IdleTimeout, got.Server.ShutdownGrace)
	}
}

// A root flag reaches `captioner config` as the number given, and a misspelt
// setting in the environment is warned about on stderr.
func TestConfigPrintsFlagsAndWarns(t *testing.T) {
	resetFlags(t, "config", "threads")
	t.Setenv("CAPTIONER_SERVER_ADRR", "0.0.0.0:80")
	out, stderr, err := runStderr(t, "config", "--threads", "12")
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Threads any }
	if err := yaml.Unmarshal([]byte(out), &got); err != nil || got.Threads != 12 {
		t.Errorf("config --threads 12 printed threads %#v (%v), want 12", got.Threads, err)
	}
	if want := "captioner: warning: the environment variable CAPTIONER_SERVER_ADRR sets no setting and is ignored; did you mean CAPTIONER_SERVER_ADDR?\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}

// TestConfigHidesTokens: the tokens come from Secrets; config says they are
// set, not what they are (kubectl exec ... captioner config printed them).
func TestConfigHidesTokens(t *testing.T) {
	t.Setenv("CAPTIONER_SERVER_LIVE", "token") // a live token needs it
	for _, tc := range []struct{ admin, live string }{{"s3cret-admin", "s3cret-live"}, {"", "s3cret-live"}} {
		t.Setenv("CAPTIONER_SERVER_ADMIN_TOKEN", tc.admin)
		t.Setenv("CAPTIONER_SERVER_LIVE_TOKEN", tc.live)
		out, err := run(t, "config")
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Server struct {
				AdminToken string `yaml:"admin_token"`
				LiveToken  string `yaml:"live_token"`
			}
		}
		shown := func(token string) string {
			if token == "" {
				return ""
			}
			return "(set; not shown)"
		}
		if err := yaml.Unmarshal([]byte(out), &got); err != nil || got.Server.AdminToken != shown(tc.admin) || got.Server.LiveToken != shown(tc.live) || strings.Contains(out, "s3cret") {
			t.Errorf("tokens %q and %q: config printed admin_token %q, live_token %q (%v); want a set one hidden, an unset one empty", tc.admin, tc.live, got.Server.AdminToken, got.Server.LiveToken, err)
		}
	}
}

// `captioner config` that cannot print fails: a full disk or a closed pipe
// is the command's error, not exit status 0 with nothing written.
func TestConfigReportsWriteErrors(t *testing.T) {
	rootCmd.SetOut(&failingWriter{})
	rootCmd.SetErr(&bytes.Buffer{})
	rootCmd.SetArgs([]string{"config"})
	if err := rootCmd.Execute(); err == nil || err.Error() != "no space left on device" {
		t.Errorf("config into a full disk: %v, want no space left on device", err)
	}
}

// `captioner config` takes no arguments: a word after it (a key the user
// hoped to see alone) is refused, not ignored.
func TestConfigTakesNoArguments(t *testing.T) {
	_, err := run(t, "config", "extra")
	if want := `unknown command "extra" for "captioner config"`; err == nil || err.Error() != want {
		t.Errorf("config extra: %v, want %q", err, want)
	}
}
