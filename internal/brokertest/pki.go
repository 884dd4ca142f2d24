package brokertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// CA is a throwaway certificate authority. Its files live in a temp dir of
// the test that made it; Issue may be called from any goroutine.
type CA struct {
	// CertFile is the CA certificate (PEM): a client's ca_file, Mosquitto's
	// cafile.
	CertFile string

	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string

	mu sync.Mutex
	n  int
}

// KeyPair is a certificate and its private key, as PEM files.
type KeyPair struct {
	CertFile string
	KeyFile  string
}

// Cert describes a certificate for CA.Issue. Every certificate is good for
// both server and client authentication, so one CA serves both sides.
type Cert struct {
	CommonName string
	// Hosts become the subject alternative names: IP addresses as IP SANs,
	// anything else as DNS names.
	Hosts []string
	// NotBefore and NotAfter default to an hour ago and a day from now.
	NotBefore, NotAfter time.Time
}

// NewCA creates a CA named name with ECDSA P-256 keys (fast to generate, and
// accepted by Mosquitto's OpenSSL at its default security level).
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"emberwatch tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create CA %s: %v", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{cert: cert, key: key, dir: t.TempDir()}
	ca.CertFile = filepath.Join(ca.dir, "ca.crt")
	writePEM(t, ca.CertFile, "CERTIFICATE", der)
	return ca
}

// Issue signs a certificate described by c and writes it with its key.
func (ca *CA) Issue(t testing.TB, c Cert) KeyPair {
	t.Helper()
	now := time.Now()
	if c.NotBefore.IsZero() {
		c.NotBefore = now.Add(-time.Hour)
	}
	if c.NotAfter.IsZero() {
		c.NotAfter = now.Add(24 * time.Hour)
	}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: c.CommonName},
		NotBefore:    c.NotBefore,
		NotAfter:     c.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range c.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("issue %s: %v", c.CommonName, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ca.mu.Lock()
	ca.n++
	base := filepath.Join(ca.dir, fmt.Sprintf("leaf%d", ca.n))
	ca.mu.Unlock()
	kp := KeyPair{CertFile: base + ".crt", KeyFile: base + ".key"}
	writePEM(t, kp.CertFile, "CERTIFICATE", der)
	writePEM(t, kp.KeyFile, "PRIVATE KEY", pkcs8)
	return kp
}

// PKI is the set of certificates the TLS tests need, all made fresh per
// test so none is ever checked in or shared.
type PKI struct {
	CA *CA
	// Server is for 127.0.0.1, ::1 and localhost, so ssl://127.0.0.1:port
	// verifies against CA.
	Server KeyPair
	// Client is a valid client certificate, ExpiredClient one that expired
	// a day ago; both signed by CA.
	Client        KeyPair
	ExpiredClient KeyPair
	// OtherCA is unrelated to CA: neither trusts the other. OtherClient is
	// a client certificate it signed.
	OtherCA     *CA
	OtherClient KeyPair
}

// NewPKI makes a PKI in the test's temp dirs.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	now := time.Now()
	p := &PKI{CA: NewCA(t, "emberwatch test CA"), OtherCA: NewCA(t, "unrelated test CA")}
	p.Server = p.CA.Issue(t, Cert{CommonName: "mosquitto", Hosts: []string{"127.0.0.1", "::1", "localhost"}})
	p.Client = p.CA.Issue(t, Cert{CommonName: "device"})
	p.ExpiredClient = p.CA.Issue(t, Cert{CommonName: "expired device", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	p.OtherClient = p.OtherCA.Issue(t, Cert{CommonName: "stranger"})
	return p
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
