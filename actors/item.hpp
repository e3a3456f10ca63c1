#pragma once

// troupe::item: a value on a stream.
//
// Type-erased, so that stages of different kinds (and on different nodes)
// connect without sharing templates. It reads like a caf::message (size,
// match_elements, get_as) and converts from one implicitly, so any registered
// type fits. A single small value (a number, an enum, a trivially copyable
// struct of up to 16 bytes) made with make_item is held inline instead: no
// heap allocation, and a copy is a copy of bytes. A caf::message allocates
// per value and counts references atomically, which made allocation and
// freeing about 40 % of a pipeline of numbers.

#include <caf/make_message.hpp>
#include <caf/message.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/none.hpp>

#include <cstddef>
#include <cstring>
#include <new>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace troupe {

namespace detail {

/// What an item needs to know of the type of its inline value.
struct inline_type {
  const std::type_info* type;
  caf::message (*to_message)(const void* value);
};

template <class T>
struct inline_type_of {
  static caf::message to_message(const void* value) {
    return caf::make_message(*static_cast<const T*>(value));
  }
  static constexpr inline_type value{&typeid(T), &to_message};
};

constexpr size_t inline_capacity = 16;

/// The type a caf::message stores for a T (make_message squashes integer
/// types, unboxes atom constants, ...): an inline item stores the same, so
/// that it reads the same as its message, e.g. after crossing a network.
template <class T>
using stored_type_t = typename caf::unbox_message_element<
  caf::detail::strip_and_convert_t<T>>::type;

template <class T>
constexpr bool fits_inline_v = std::is_trivially_copyable<T>::value
                               && !std::is_pointer<T>::value
                               && sizeof(T) <= inline_capacity
                               && alignof(T) <= alignof(uint64_t);

} // namespace detail

/// Whether make_item holds a T inline (without allocating).
template <class T>
constexpr bool fits_inline = detail::fits_inline_v<detail::stored_type_t<std::decay_t<T>>>;

class item {
public:
  /// An empty item (size 0), like an empty caf::message.
  item() noexcept {
    new (&msg_) caf::message();
  }

  /// An item holding the elements of `x`; implicit, so that
  /// caf::make_message(...) is an item. A message holding just an item (an
  /// actor's handler that returned one) is that item, not an item in an item.
  item(caf::message x) noexcept;

  item(const item& other) noexcept {
    init_from(other);
  }

  item(item&& other) noexcept {
    init_from(std::move(other));
  }

  // Through a temporary: `other` may live inside this item's message
  // (x = x.get_as<item>(0)), which destroying this first would free.
  item& operator=(const item& other) noexcept {
    item copy{other};
    this->~item();
    new (this) item(std::move(copy));
    return *this;
  }

  item& operator=(item&& other) noexcept {
    item moved{std::move(other)};
    this->~item();
    new (this) item(std::move(moved));
    return *this;
  }

  // An empty message has nothing to release, and its destructor is out of
  // line: an item emptied on a hot path (a job's place freed) skips it.
  ~item() {
    if (type_ == nullptr && msg_.cvals() != nullptr)
      msg_.~message();
  }

  /// An item holding `x` inline.
  template <class T>
  static item of(const T& x) noexcept {
    static_assert(fits_inline<T>, "this type is not held inline: use make_item");
    using stored = detail::stored_type_t<T>;
    item result{&detail::inline_type_of<stored>::value};
    new (result.value_) stored(x);
    return result;
  }

  size_t size() const noexcept {
    return type_ != nullptr ? 1 : msg_.size();
  }

  bool empty() const noexcept {
    return size() == 0;
  }

  /// Whether the value is held inline (no caf::message behind it).
  bool is_inline() const noexcept {
    return type_ != nullptr;
  }

  template <class T>
  bool match_element(size_t pos) const noexcept {
    if (type_ != nullptr)
      return pos == 0 && holds<T>();
    return msg_.match_element<T>(pos);
  }

  template <class... Ts>
  bool match_elements() const noexcept {
    if (type_ != nullptr) {
      if constexpr (sizeof...(Ts) == 1)
        return holds<Ts...>();
      else
        return false;
    }
    return msg_.match_elements<Ts...>();
  }

  /// The element at `pos`, which must be a T (see match_element).
  template <class T>
  const T& get_as(size_t pos) const noexcept {
    if (type_ != nullptr)
      return *std::launder(reinterpret_cast<const T*>(value_));
    return msg_.get_as<T>(pos);
  }

  template <class T>
  T& get_mutable_as(size_t pos) {
    if (type_ != nullptr)
      return *std::launder(reinterpret_cast<T*>(value_));
    return msg_.get_mutable_as<T>(pos);
  }

  /// The elements as a caf::message: to send the item as a request, or to
  /// apply a behavior to it. Allocates for an inline value.
  caf::message to_message() const& {
    return type_ != nullptr ? type_->to_message(value_) : msg_;
  }

  caf::message to_message() && {
    return type_ != nullptr ? type_->to_message(value_) : std::move(msg_);
  }

private:
  // An inline item whose value the caller constructs in value_; no message
  // is made and destroyed on the way (make_item is on every hot path).
  explicit item(const detail::inline_type* type) noexcept : type_(type) {
    // nop
  }

  // Constructs this (no value alive yet) as a copy of `other`, or from it
  // when it is an rvalue.
  template <class Item>
  void init_from(Item&& other) noexcept {
    type_ = other.type_;
    if (type_ != nullptr)
      std::memcpy(value_, other.value_, sizeof(value_));
    else if (other.msg_.cvals() == nullptr)
      new (&msg_) caf::message(); // inline, where the move is out of line
    else
      new (&msg_) caf::message(std::forward<Item>(other).msg_);
  }

  template <class T>
  bool holds() const noexcept {
    using stored = detail::stored_type_t<std::decay_t<T>>;
    // Asking an inline item for an error or a batch is common (answers are
    // checked for errors), and typeid's == compares names with strcmp.
    if constexpr (!detail::fits_inline_v<stored>) {
      return false;
    } else {
      constexpr auto* own = &detail::inline_type_of<stored>::value;
      // Two shared objects may each have their own copy of the descriptor.
      return type_ == own || *type_->type == typeid(stored);
    }
  }

  // Null: the elements are in msg_. Otherwise value_ holds one value of
  // this type, and no caf::message exists, so that an inline item never
  // calls into CAF (a message's destructor is out of line).
  const detail::inline_type* type_ = nullptr;
  union {
    caf::message msg_;
    alignas(uint64_t) unsigned char value_[detail::inline_capacity];
  };
};

/// An item holding `x`: inline if it fits (fits_inline), otherwise in a
/// caf::message.
template <class T>
item make_item(T&& x) {
  using value_type = std::decay_t<T>;
  if constexpr (std::is_same<value_type, item>::value)
    return std::forward<T>(x);
  else if constexpr (std::is_same<value_type, caf::message>::value)
    return item{std::forward<T>(x)};
  else if constexpr (fits_inline<value_type>)
    return item::of(x);
  else
    return item{caf::make_message(std::forward<T>(x))};
}

/// Renders like the caf::message of the same elements, e.g. "(42)".
std::string to_string(const item& x);

/// On the wire an item is the caf::message of its elements; it arrives
/// held in a caf::message.
template <class Inspector>
typename std::enable_if<Inspector::reads_state, typename Inspector::result_type>::type
inspect(Inspector& f, item& x) {
  auto msg = x.to_message();
  return f(caf::meta::type_name("troupe::item"), msg);
}

template <class Inspector>
typename std::enable_if<Inspector::writes_state, typename Inspector::result_type>::type
inspect(Inspector& f, item& x) {
  caf::message msg;
  auto assign = [&]() -> caf::error {
    x = item{std::move(msg)};
    return caf::none;
  };
  return f(caf::meta::type_name("troupe::item"), msg, caf::meta::load_callback(assign));
}

} // namespace troupe
