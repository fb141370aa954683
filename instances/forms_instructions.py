"""Forms of the instruction file pages: the import (a file or pasted text, dry run first) and the git sources."""

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from core.crypto import UnreadableSecret
from instances.instructions.parser import InstructionFileError, check_size, decode
from instances.instructions.sources import check_ref, check_url
from instances.models import Application, InstructionSource


class InstructionImportForm(forms.Form):
    """One file or a pasted text (not both); a dry run unless the box is unticked. The text it reads is
    ``cleaned_data["content"]``; a file too big or not UTF-8 is a form error, nothing imported."""

    file = forms.FileField(label=_("File"), required=False)
    text = forms.CharField(
        label=_("Or paste the instructions"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "class": "font-monospace", "spellcheck": "false"}),
        help_text=_("One instruction per line: action|instance|version|dd/MM/yyyy-HH:MM."),
    )
    application = forms.ModelChoiceField(
        label=_("Application of the C lines"),
        queryset=Application.objects.order_by("name"),
        required=False,
        help_text=_("Empty: the portal's default application."),
    )
    dry_run = forms.BooleanField(label=_("Dry run: show what would happen, save nothing"), required=False, initial=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # With one application there is nothing to choose.
        if Application.objects.count() < 2:
            self.fields["application"].widget = forms.HiddenInput()

    def clean(self):
        cleaned = super().clean()
        upload, text = cleaned.get("file"), cleaned.get("text") or ""
        if upload and text.strip():
            raise forms.ValidationError(_("Upload a file or paste text, not both."))
        if not upload and not text.strip():
            raise forms.ValidationError(_("Upload a file or paste the instructions."))
        max_bytes = settings.PORTAL_INSTRUCTIONS_MAX_BYTES
        try:
            if upload:
                check_size(upload.size, max_bytes)
                cleaned["content"] = decode(upload.read(max_bytes + 1), max_bytes=max_bytes)
            else:
                check_size(len(text.encode("utf-8", "surrogatepass")), max_bytes)
                cleaned["content"] = text
        except InstructionFileError as refused:
            raise forms.ValidationError(refused.message.render()) from None
        return cleaned


class InstructionSourceForm(forms.ModelForm):
    """A git source. The password or token is write-only: never shown; left empty, the stored one stays."""

    secret = forms.CharField(
        label=_("Password or token"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Encrypted at rest and never shown again; leave empty to keep the stored one."),
    )
    clear_secret = forms.BooleanField(label=_("Remove the stored password or token"), required=False)

    class Meta:
        model = InstructionSource
        fields = ["name", "url", "branch", "path", "application", "poll_interval", "enabled", "username", "secret"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["secret"] = ""
        self.secret_changed = False
        if not self.instance.pk or not self.instance.secret:
            del self.fields["clear_secret"]

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        problem = check_url(url, [p.lower() for p in settings.PORTAL_INSTRUCTIONS_GIT_PROTOCOLS])
        if problem is not None:
            raise forms.ValidationError(problem.render())
        return url

    def clean_branch(self):
        branch = self.cleaned_data["branch"].strip()
        if not check_ref(branch):
            raise forms.ValidationError(_("This is not a valid branch name."))
        return branch

    def clean_path(self):
        path = self.cleaned_data["path"].strip().lstrip("/")
        if not path or path.startswith("-") or ".." in path.split("/"):
            raise forms.ValidationError(_("Give the path of a file inside the repository."))
        return path

    def clean(self):
        cleaned = super().clean()
        # The stored password or token goes only where it was entered for: a new host (or transport) needs it typed
        # again, or anyone allowed to edit the source could send it to a server of theirs.
        url = cleaned.get("url")
        kept = self.instance.pk and self.instance.secret and not self.secret_changed
        clearing = "clear_secret" in self.fields and self.data.get(self.add_prefix("clear_secret"))
        if kept and url and not clearing and _origin(url) != _origin(self.instance.url):
            self.add_error(
                "secret", _("Enter the password or token again: it is not sent to the repository's new address.")
            )
        return cleaned

    def clean_secret(self):
        value = self.cleaned_data["secret"]
        # clear_secret comes after this field, so it is read from the raw data.
        if "clear_secret" in self.fields and self.data.get(self.add_prefix("clear_secret")):
            self.secret_changed = bool(self.instance.secret)
            return ""
        if not value and self.instance.pk:
            stored = self.instance.secret
            # Still the stored value (or its ciphertext, when the keys changed): the form copies cleaned data later.
            return stored if isinstance(stored, UnreadableSecret) else (stored or "")
        self.secret_changed = bool(value)
        return value


def _origin(url: str) -> tuple[str, str]:
    """A git URL's transport and host (``git@host:path`` is SSH), to tell where its credentials would go."""
    url = (url or "").strip()
    if "://" in url:
        parsed = urlsplit(url)
        return parsed.scheme.lower(), (parsed.hostname or "").lower()
    if url.startswith("/"):
        return "file", ""
    return "ssh", url.split(":", 1)[0].rsplit("@", 1)[-1].lower()
