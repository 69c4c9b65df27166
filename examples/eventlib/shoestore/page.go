package shoestore

import (
	"html/template"
	"log/slog"
	"net/http"
	"slices"

	"github.com/gomonster/monster"
)

// NewHandler returns the shop's web handler:
//
//   - GET /products/{id}?user=NAME: the product page, which logs a
//     shoestore.product_viewed event;
//   - GET /: the list of products.
//
// The user parameter stands in for a login (eventlib's @login_required):
// without it the page answers 401. logger receives events that could not
// be logged; nil means slog.Default().
func NewHandler(viewed *monster.Type[ProductViewed], catalog Catalog, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	page := &productPage{viewed: viewed, catalog: catalog, logger: logger}
	mux := http.NewServeMux()
	mux.Handle("GET /products/{id}", page)
	mux.HandleFunc("GET /{$}", page.index)
	return mux
}

type productPage struct {
	viewed  *monster.Type[ProductViewed]
	catalog Catalog
	logger  *slog.Logger
}

func (p *productPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	if user == "" {
		http.Error(w, "log in first: add ?user=NAME", http.StatusUnauthorized)
		return
	}
	product, ok := p.catalog[r.PathValue("id")]
	if !ok {
		http.NotFound(w, r)
		return
	}

	// The whole of the event tracking, in one line.
	_, err := p.viewed.Log(r.Context(), ProductViewed{User: user, Product: product.ID, Source: product.Source})
	if err != nil {
		// The customer came for the product, not for our statistics: a
		// failure to log is reported, not shown.
		p.logger.Error("shoestore: logging product view", "product", product.ID, "user", user, "error", err)
	}

	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := productTemplate.Execute(w, product); err != nil {
		p.logger.Error("shoestore: rendering product page", "product", product.ID, "error", err)
	}
}

func (p *productPage) index(w http.ResponseWriter, r *http.Request) {
	products := make([]Product, 0, len(p.catalog))
	for _, product := range p.catalog {
		products = append(products, product)
	}
	slices.SortFunc(products, func(a, b Product) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := indexTemplate.Execute(w, products); err != nil {
		p.logger.Error("shoestore: rendering product list", "error", err)
	}
}

var productTemplate = template.Must(template.New("product").Parse(`<!doctype html>
<title>{{.Name}} · Shoe Store</title>
<h1>{{.Name}}</h1>
<p>{{.PriceText}}</p>
`))

var indexTemplate = template.Must(template.New("index").Parse(`<!doctype html>
<title>Shoe Store</title>
<h1>Shoe Store</h1>
<ul>
{{range .}}<li><a href="/products/{{.ID}}?user=alice">{{.Name}}</a> {{.PriceText}}</li>
{{end}}</ul>
`))
