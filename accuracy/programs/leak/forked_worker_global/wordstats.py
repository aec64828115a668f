"""The worker side: counts words, and (the leak) remembers every article it has seen in a module global."""

SEEN_ARTICLES = []


def count_words(article):
    SEEN_ARTICLES.append(article)  # expect: suspect
    return len(article.split())
