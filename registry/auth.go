package registry

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/authn"
)

// AuthConfig is Docker's credential record: what `docker login` stores in
// ~/.docker/config.json and what the CLI sends base64url-encoded in the
// X-Registry-Auth header.
type AuthConfig struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"` // base64("username:password")
	Email         string `json:"email,omitempty"`
	ServerAddress string `json:"serveraddress,omitempty"`
	// IdentityToken is an OAuth2 refresh token exchanged for access tokens.
	IdentityToken string `json:"identitytoken,omitempty"`
	// RegistryToken is a bearer token sent to the registry as it is.
	RegistryToken string `json:"registrytoken,omitempty"`
}

// Empty tells whether the record holds no credential (anonymous access).
func (a *AuthConfig) Empty() bool {
	return a == nil || (a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == "")
}

// maxAuthHeader bounds what DecodeAuthHeader accepts.
const maxAuthHeader = 64 << 10

// DecodeAuthHeader decodes an X-Registry-Auth header: base64url JSON of an
// AuthConfig (the docker CLI sends "e30=", `{}`, when it has none). Padded
// and unpadded, URL-safe and standard alphabets are accepted, as dockerd
// does. An empty header is anonymous (nil, nil).
func DecodeAuthHeader(h string) (*AuthConfig, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return nil, nil
	}
	if len(h) > maxAuthHeader {
		return nil, fmt.Errorf("X-Registry-Auth header: %d bytes is too long", len(h))
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if raw, err = enc.DecodeString(h); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("X-Registry-Auth header: not base64: %w", err)
	}
	var a AuthConfig
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("X-Registry-Auth header: not an auth config: %w", err)
	}
	if a.Empty() {
		return nil, nil
	}
	return &a, nil
}

// EncodeAuthHeader encodes a for the X-Registry-Auth header (what the
// docker CLI sends; "e30=" for no credentials).
func EncodeAuthHeader(a *AuthConfig) string {
	if a == nil {
		a = &AuthConfig{}
	}
	b, _ := json.Marshal(a)
	return base64.URLEncoding.EncodeToString(b)
}

// DockerConfigAuth reads the credentials for registry (a host such as
// 127.0.0.1:5000 or docker.io) from a docker CLI configuration directory
// (dir; "" means $DOCKER_CONFIG or ~/.docker): `auths` entries with a
// base64 `auth` or username and password, and credential helpers
// (credsStore, credHelpers). No entry is anonymous (nil, nil).
func DockerConfigAuth(dir, registry string) (*AuthConfig, error) {
	cf, err := config.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	key := registry
	if registry == dockerHubDomain || registry == dockerHubRegistry {
		key = dockerHubAuthKey
	}
	ac, err := cf.GetAuthConfig(key)
	if err != nil {
		return nil, fmt.Errorf("docker config %s: credentials for %s: %w", cf.GetFilename(), registry, err)
	}
	a := &AuthConfig{Username: ac.Username, Password: ac.Password, Auth: ac.Auth, ServerAddress: ac.ServerAddress,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}
	if a.Empty() {
		return nil, nil
	}
	if a.ServerAddress == "" {
		a.ServerAddress = key
	}
	return a, nil
}

// authenticator turns a credential record into go-containerregistry's.
func (a *AuthConfig) authenticator() (authn.Authenticator, error) {
	if a.Empty() {
		return authn.Anonymous, nil
	}
	user, pass := a.Username, a.Password
	if a.Auth != "" && user == "" {
		b, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return nil, fmt.Errorf("credentials: auth field is not base64: %w", err)
		}
		u, p, ok := strings.Cut(string(b), ":")
		if !ok {
			return nil, fmt.Errorf("credentials: auth field is not username:password")
		}
		user, pass = u, p
	}
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: pass,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}), nil
}
