package api

import (
	"errors"
	"net"
	"net/http"
	"sort"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/events"
	dockerregistry "github.com/docker/docker/api/types/registry"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/registry"
)

// registryErr classifies a pull or push error that happened before the
// stream started, as dockerd answers: an unknown manifest or repository,
// and a pull the registry denies, are 404s.
func registryErr(err error, pull bool) error {
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return errdefs.As(errdefs.NotFound, err)
	case pull && errors.Is(err, registry.ErrUnauthorized):
		return errdefs.As(errdefs.NotFound, err)
	case errors.Is(err, image.ErrInvalid):
		return errdefs.As(errdefs.InvalidParameter, err)
	}
	return err
}

// imagePull is POST /images/create?fromImage=…&tag=…&platform=…: the
// registry package's pull, streamed as dockerd streams it.
func (s *Server) imagePull(w http.ResponseWriter, r *http.Request, from, tag string) error {
	ref, err := registry.NormalizeImage(from, tag)
	if err != nil {
		return errdefs.As(errdefs.InvalidParameter, err)
	}
	auth, err := registry.DecodeAuthHeader(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		return errdefs.As(errdefs.InvalidParameter, err)
	}
	st := registry.NewHTTPStream(w)
	_, err = registry.Pull(r.Context(), s.Images, ref, registry.PullOptions{
		Platform: r.URL.Query().Get("platform"), Auth: auth, Config: &s.Engine.Config().Config}, st.Send)
	if err != nil {
		if st.Started() {
			st.Send(registry.ErrorMessage(err))
			return nil
		}
		return registryErr(err, true)
	}
	s.Engine.Events.Publish(events.ImageEventType, events.ActionPull, image.Familiar(ref), map[string]string{"name": image.Familiar(ref)})
	return nil
}

// imagePush is POST /images/{name}/push?tag=…; without a tag, every tag
// of the repository is pushed, as dockerd does.
func (s *Server) imagePush(w http.ResponseWriter, r *http.Request, name string) error {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return errdefs.InvalidParameterf("invalid reference format %q: %v", name, err)
	}
	auth, err := registry.DecodeAuthHeader(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		return errdefs.As(errdefs.InvalidParameter, err)
	}
	var refs []string
	if tag := r.URL.Query().Get("tag"); tag != "" {
		refs = []string{reference.TrimNamed(named).String() + ":" + tag}
	} else if t, ok := named.(reference.Tagged); ok {
		refs = []string{reference.TrimNamed(named).String() + ":" + t.Tag()}
	} else {
		imgs, err := s.Images.List()
		if err != nil {
			return err
		}
		for _, img := range imgs {
			for _, n := range img.Names() {
				if o, err := reference.ParseNormalizedNamed(n); err == nil && o.Name() == named.Name() {
					if _, ok := o.(reference.Tagged); ok {
						refs = append(refs, n)
					}
				}
			}
		}
		sort.Strings(refs)
		if len(refs) == 0 {
			return errdefs.NotFoundf("An image does not exist locally with the tag: %s", reference.FamiliarName(named))
		}
	}
	st := registry.NewHTTPStream(w)
	for _, ref := range refs {
		_, err := registry.Push(r.Context(), s.Images, ref, registry.PushOptions{Auth: auth, Config: &s.Engine.Config().Config}, st.Send)
		if err != nil {
			if st.Started() {
				st.Send(registry.ErrorMessage(err))
				return nil
			}
			return registryErr(err, false)
		}
		s.Engine.Events.Publish(events.ImageEventType, events.ActionPush, image.Familiar(ref), map[string]string{"name": image.Familiar(ref)})
	}
	return nil
}

// registryInfo is `docker info`'s registry section.
func registryInfo(c *registry.Config) *dockerregistry.ServiceConfig {
	sc := &dockerregistry.ServiceConfig{InsecureRegistryCIDRs: []*dockerregistry.NetIPNet{},
		IndexConfigs: map[string]*dockerregistry.IndexInfo{"docker.io": {Name: "docker.io", Mirrors: append([]string{}, c.Mirrors...), Secure: true, Official: true}},
		Mirrors:      append([]string{}, c.Mirrors...)}
	for _, cidr := range c.InsecureCIDRs() {
		if _, n, err := net.ParseCIDR(cidr); err == nil {
			sc.InsecureRegistryCIDRs = append(sc.InsecureRegistryCIDRs, (*dockerregistry.NetIPNet)(n))
		}
	}
	for _, h := range c.Insecure {
		if _, _, err := net.ParseCIDR(h); err != nil {
			sc.IndexConfigs[h] = &dockerregistry.IndexInfo{Name: h, Mirrors: []string{}, Secure: false}
		}
	}
	return sc
}
