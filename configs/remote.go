package configs

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// RemoteConfig configures config pushes over MQTT.
type RemoteConfig struct {
	// Enabled subscribes to <prefix>/<device>/config. Default true.
	Enabled bool `yaml:"enabled"`
	// PublicKeyFile is an ed25519 public key (PEM, as `agent config keygen`
	// writes it). When set, only pushes signed by its private key are
	// accepted.
	PublicKeyFile string `yaml:"public_key_file"`
}

// Envelope is what an operator publishes on <prefix>/<device>/config: a
// whole config (YAML or JSON text, exactly as signed), its revision, and
// optionally an ed25519 signature over both.
type Envelope struct {
	// Revision orders pushes: one lower than the running revision is
	// refused (a replay), the same one is already applied. It starts at 1.
	Revision uint64 `json:"revision"`
	// Payload is the config's source text.
	Payload string `json:"payload"`
	// Signature is base64 (standard encoding) of the ed25519 signature of
	// SignedBytes(Revision, Payload).
	Signature string `json:"signature,omitempty"`
}

// MaxEnvelopeBytes bounds a pushed message; configs are a few KiB.
const MaxEnvelopeBytes = 1 << 20

// Errors returned for pushed configs.
var (
	// ErrBadEnvelope is returned for a push that is not a well-formed envelope.
	ErrBadEnvelope = errors.New("configs: malformed config envelope")
	// ErrUnsigned is returned when a signature is required and missing.
	ErrUnsigned = errors.New("configs: config is not signed, and this device requires signed configs")
	// ErrBadSignature is returned when the signature does not verify.
	ErrBadSignature = errors.New("configs: signature does not match the payload and revision")
)

// SignedBytes is what a signature covers: a fixed context string, the
// revision in decimal and the payload, so that neither can be swapped for
// another signed one's.
func SignedBytes(revision uint64, payload string) []byte {
	b := make([]byte, 0, 32+len(payload))
	b = append(b, "emberwatch-config-v1\n"...)
	b = strconv.AppendUint(b, revision, 10)
	b = append(b, '\n')
	return append(b, payload...)
}

// DecodeEnvelope reads a pushed message strictly: a JSON object with
// exactly the envelope's fields, a revision of at least 1, a non-empty
// payload, and a signature that is 64 bytes of base64 if present.
func DecodeEnvelope(data []byte) (Envelope, error) {
	var e Envelope
	if len(data) > MaxEnvelopeBytes {
		return e, fmt.Errorf("%w: %d bytes, more than %d", ErrBadEnvelope, len(data), MaxEnvelopeBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v (want {\"revision\": N, \"payload\": \"...\", \"signature\": \"...\"}; `agent config push` builds it)", ErrBadEnvelope, err)
	}
	if dec.More() {
		return Envelope{}, fmt.Errorf("%w: data after the JSON object", ErrBadEnvelope)
	}
	switch {
	case e.Revision == 0:
		return Envelope{}, fmt.Errorf("%w: revision must be >= 1", ErrBadEnvelope)
	case e.Payload == "":
		return Envelope{}, fmt.Errorf("%w: payload is empty", ErrBadEnvelope)
	}
	if e.Signature != "" {
		sig, err := base64.StdEncoding.DecodeString(e.Signature)
		if err != nil || len(sig) != ed25519.SignatureSize {
			return Envelope{}, fmt.Errorf("%w: signature must be %d bytes in base64", ErrBadEnvelope, ed25519.SignatureSize)
		}
	}
	return e, nil
}

// Encode returns the envelope as JSON.
func (e Envelope) Encode() []byte {
	b, err := json.Marshal(e)
	if err != nil {
		panic("configs: encode envelope: " + err.Error()) // strings and an integer cannot fail
	}
	return b
}

// Sign sets e's signature with key.
func (e *Envelope) Sign(key ed25519.PrivateKey) {
	e.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, SignedBytes(e.Revision, e.Payload)))
}

// Verify checks e's signature against key; a nil key accepts any envelope.
func (e Envelope) Verify(key ed25519.PublicKey) error {
	if key == nil {
		return nil
	}
	if e.Signature == "" {
		return ErrUnsigned
	}
	sig, err := base64.StdEncoding.DecodeString(e.Signature)
	if err != nil || !ed25519.Verify(key, SignedBytes(e.Revision, e.Payload), sig) {
		return ErrBadSignature
	}
	return nil
}

// GenerateKey returns a new ed25519 key pair as PEM: the private key in
// PKCS #8, the public key in PKIX form (both readable by openssl).
func GenerateKey() (publicPEM, privatePEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	sk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: sk}), nil
}

// LoadPublicKey reads an ed25519 public key from a PEM file.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, not an ed25519 public key", path, k)
	}
	return pub, nil
}

// LoadPrivateKey reads an ed25519 private key from a PEM file.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, not an ed25519 private key", path, k)
	}
	return priv, nil
}

func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("%s: no PEM block of type %q found", path, typ)
	}
	return blk.Bytes, nil
}
