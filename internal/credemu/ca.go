// A throwaway certificate authority for the STS stand-in's HTTPS, and a way to make this process trust it as a system root (credentials-go reaches STS only over HTTPS, with the system roots).
package credemu

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"sync"
	"time"
)

var authority struct {
	once   sync.Once
	err    error
	caPEM  []byte
	leaf   *x509.Certificate
	server tls.Certificate
}

// loadAuthority makes, once per process, a CA and a server certificate it
// signs for 127.0.0.1, ::1 and localhost.
func loadAuthority() error {
	authority.once.Do(func() { authority.err = makeAuthority() })
	return authority.err
}

func makeAuthority() error {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "credemu test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leafTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "credemu"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(47 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTemplate, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return err
	}
	authority.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	authority.leaf = leaf
	authority.server = tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey, Leaf: leaf}
	return nil
}

// CAPool is a pool holding the stand-ins' CA, for clients that take one.
func CAPool() (*x509.CertPool, error) {
	if err := loadAuthority(); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(authority.caPEM)
	return pool, nil
}

var trust struct {
	once sync.Once
	err  error
}

// TrustInProcess makes this process trust the stand-ins' CA as a system
// root, as an operator trusts a private CA with SSL_CERT_FILE: it points
// SSL_CERT_FILE at the CA for the moment Go loads the system roots, then
// removes the file and restores the variable. Go loads the system roots
// once per process, so this must run before anything verifies a
// certificate against them: call it from an init function or TestMain. It
// returns an error when the roots were loaded already.
func TrustInProcess() error {
	trust.once.Do(func() { trust.err = trustInProcess() })
	return trust.err
}

func trustInProcess() error {
	if err := loadAuthority(); err != nil {
		return err
	}
	f, err := os.CreateTemp("", "credemu-ca-*.pem")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(authority.caPEM); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	old, had := os.LookupEnv("SSL_CERT_FILE")
	os.Setenv("SSL_CERT_FILE", f.Name())
	_, loadErr := x509.SystemCertPool() // loads the system roots, once per process
	if had {
		os.Setenv("SSL_CERT_FILE", old)
	} else {
		os.Unsetenv("SSL_CERT_FILE")
	}
	if loadErr != nil {
		return loadErr
	}
	if _, err := authority.leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.1"}); err != nil {
		return errors.Join(fmt.Errorf("credemu: the system roots were loaded before TrustInProcess ran, so the STS stand-in's CA is not trusted"), err)
	}
	return nil
}

// serverTLS is the stand-ins' server TLS configuration.
func serverTLS() (*tls.Config, error) {
	if err := loadAuthority(); err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{authority.server}, MinVersion: tls.VersionTLS12}, nil
}
