def index(r): pass
def detail(r, pk): pass
def delete(r, pk): pass
