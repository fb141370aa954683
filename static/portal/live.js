/*
 * Live parts of a page: every element with data-live-url has its content replaced by the HTML that URL returns,
 * every data-live-interval milliseconds (3000 by default). Polling pauses while the page is hidden and resumes
 * when it is shown again. A failed request (network error, error status, session expired) leaves the content
 * as it is and never throws.
 */
(function () {
  "use strict";

  function start(element) {
    var url = element.getAttribute("data-live-url");
    var interval = parseInt(element.getAttribute("data-live-interval"), 10) || 3000;
    var timer = null;
    var busy = false;

    function schedule() {
      if (timer === null && document.visibilityState === "visible") {
        timer = window.setTimeout(tick, interval);
      }
    }

    function stop() {
      if (timer !== null) {
        window.clearTimeout(timer);
        timer = null;
      }
    }

    function tick() {
      timer = null;
      if (document.visibilityState !== "visible" || busy) {
        return;
      }
      busy = true;
      var request;
      try {
        request = window.fetch(url, {
          credentials: "same-origin",
          headers: { "X-Requested-With": "XMLHttpRequest", Accept: "text/html" },
          cache: "no-store",
          redirect: "follow"
        });
      } catch (error) {
        request = Promise.reject(error);
      }
      request
        .then(function (response) {
          // A redirect means the session ended (login page): keep what is shown.
          if (!response.ok || response.redirected) {
            return null;
          }
          return response.text();
        })
        .then(function (html) {
          if (typeof html === "string") {
            element.innerHTML = html;
          }
        })
        .catch(function () {
          /* Offline or the server restarts: try again at the next tick. */
        })
        .then(function () {
          busy = false;
          schedule();
        });
    }

    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") {
        schedule();
      } else {
        stop();
      }
    });
    schedule();
  }

  function init() {
    if (!window.fetch) {
      return;
    }
    var elements = document.querySelectorAll("[data-live-url]");
    for (var i = 0; i < elements.length; i++) {
      start(elements[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
